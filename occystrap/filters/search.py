"""search: report members whose path matches, in 0.4.17's output formats (B.3).

Glob mode matches fnmatch against the full path or its basename; --regex is an
unanchored re.search on the full path.  Results are printed in manifest layer order
(0.4.17 used arrival order, which varied between runs).
"""
import fnmatch
import re

from ..errors import URIParseError
from ..uri import boolean, text
from .base import Filter, Observer

TYPE_NAMES = {b"0": "file", b"\0": "file", b"7": "file", b"5": "directory",
              b"2": "symlink", b"1": "hardlink", b"6": "fifo",
              b"3": "character device", b"4": "block device"}


def describe(member):
    """One match line: `path (file, N bytes)`, `path -> target (symlink)`, ..."""
    path = member.name.decode("utf-8", "surrogateescape")
    kind = TYPE_NAMES.get(member.type, "unknown")
    if kind == "file":
        return "%s (file, %d bytes)" % (path, member.size)
    if kind in ("symlink", "hardlink"):
        return "%s -> %s (%s)" % (path, member.linkname.decode("utf-8", "surrogateescape"), kind)
    return "%s (%s)" % (path, kind)


class Search(Filter):
    name = "search"
    OPTIONS = {"pattern": text, "regex": boolean, "script_friendly": boolean}
    OPTION_ALIASES = {"script-friendly": "script_friendly"}

    def __init__(self, spec):
        super().__init__(spec)
        self.pattern = self.option("pattern")
        if not self.pattern:
            raise URIParseError("search filter requires pattern option")
        self.regex = self.option("regex", default=False)
        self.script_friendly = self.option("script_friendly", default=False)
        if self.regex:
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise URIParseError("invalid regex %r: %s" % (self.pattern, exc)) from None
            self._match = lambda path: compiled.search(path) is not None
        else:
            self._match = lambda path: (fnmatch.fnmatchcase(path, self.pattern) or
                                        fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], self.pattern))

    def stage(self, ref):
        observer = Observer()
        self.stages[ref.index] = (ref, observer)
        return observer

    def matches(self, results=None):
        """[(layer name, [members])] for layers with matches, in manifest order."""
        found = []
        for index in sorted(self.stages):
            ref, observer = self.stages[index]
            hits = [m for m in observer.members
                    if self._match(m.name.decode("utf-8", "surrogateescape"))]
            if hits:
                found.append((self.layer_name(ref, results), hits))
        return found

    def finish(self, source, results, out):
        found = self.matches(results)
        if self.script_friendly:
            for layer, hits in found:
                for member in hits:
                    out.write("%s:%s:%s:%s\n" % (source.image, source.tag, layer,
                                                 member.name.decode("utf-8", "surrogateescape")))
            return
        if not found:
            out.write("No matches found.\n")
            return
        total = 0
        for layer, hits in found:
            out.write("Layer: %s\n" % layer)
            for member in hits:
                out.write("  %s\n" % describe(member))
            out.write("\n")
            total += len(hits)
        out.write("Found %d match%s in %d layer%s.\n" % (
            total, "" if total == 1 else "es", len(found), "" if len(found) == 1 else "s"))
