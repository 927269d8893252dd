"""Compiled exclude/search matcher (pure-Python twin of globset.pyx).

Semantics are Python fnmatch.fnmatchcase on bytes, as upstream 0.4.17 used (B.11): `*`
also matches `/`, `?` one byte, `[...]`/`[!...]` byte classes, case-sensitive.  Two
fixes over upstream (E.2 #9): a leading `/` or `./` in a pattern is ignored (tar names
have none), and a pattern starting with `**/` also matches at the top level.
"""
import fnmatch

__all__ = ["GlobSet", "normalize_name"]


def normalize_name(name):
    """Strip leading './' and '/' and a trailing '/', as tar names are matched."""
    while name.startswith(b"./") or name.startswith(b"/"):
        name = name[2:] if name.startswith(b"./") else name[1:]
    return name.rstrip(b"/") if len(name) > 1 else name


def _expand(pattern):
    pattern = normalize_name(pattern)
    if not pattern:
        raise ValueError("empty pattern")
    yield pattern
    if pattern.startswith(b"**/"):
        yield pattern[3:]


class GlobSet:
    """A set of fnmatch patterns matched against tar member names (bytes)."""

    def __init__(self, patterns):
        self.patterns = tuple(p if isinstance(p, bytes) else p.encode("utf-8", "surrogateescape")
                              for p in patterns)
        self._compiled = [p for pattern in self.patterns for p in _expand(pattern)]

    def match(self, name):
        """True when any pattern matches the (already normalized) name."""
        for pattern in self._compiled:
            if fnmatch.fnmatchcase(name, pattern):
                return True
        return False
