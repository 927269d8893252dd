"""exclude: drop members whose path matches any of the patterns.

`pattern=a,b,c` holds several patterns (0.4.17 could not, E.2 #9).  fnmatch semantics
on the member path (`*` also crosses `/`); a leading `/` or `./` in a pattern is
ignored, `**/x` also matches a top-level `x`.  A matching directory takes its whole
subtree with it, hard links to dropped files go too, and whiteouts are never dropped
(dropping one would resurrect the file it deletes).
"""
from ..errors import URIParseError
from .._native import globset, rewrite
from ..uri import text
from .base import Filter


class Exclude(Filter):
    name = "exclude"
    OPTIONS = {"pattern": text}
    OPTION_ALIASES = {"patterns": "pattern"}
    changes_content = True

    def __init__(self, spec):
        super().__init__(spec)
        pattern = self.option("pattern")
        if not pattern:
            raise URIParseError("exclude filter requires pattern option")
        patterns = [p.strip() for p in pattern.split(",") if p.strip()]
        try:
            self.globs = globset.GlobSet(patterns)
        except ValueError as exc:
            raise URIParseError("exclude: bad pattern: %s" % exc) from None

    def stage(self, ref):
        return rewrite.TarRewriter(exclude=self.globs)
