"""Exclude/search matcher, written once for both twins.

Semantics are Python fnmatch.fnmatchcase on bytes, as upstream 0.4.17 used (B.11): `*`
also matches `/`, `?` one byte, `[...]`/`[!...]` byte classes, case-sensitive.  Two
fixes over upstream (E.2 #9): a leading `/` or `./` in a pattern is ignored (tar names
have none), and a pattern starting with `**/` also matches at the top level.

Patterns compile to a token program (literal byte, any byte, star, 256-bit class);
matching is the classic greedy star matcher with one backtrack point, which is exact
for these tokens because `*` may match any byte including `/`.  Byte classes are
computed with fnmatch itself at compile time, so `[...]` edge cases (ranges, `!`, a
leading `]`) mean exactly what fnmatch says; tests hold the matcher to fnmatch.

This file is the pure-Python twin (`globset_py`) and, through the symlink globset.py
and the augmenting globset.pxd, the source Cython compiles into `globset`, whose
pointer-taking rules (match_program, name_start, name_end, is_whiteout) the C fast
path of rewrite.pyx calls.
"""
import fnmatch
import re

__all__ = ["GlobSet", "normalize_name"]

T_LIT = 0
T_ANY = 1
T_STAR = 2
T_CLASS = 3


# -- rules shared with the C fast path (globset.pxd declares them cdef nogil) -----------

def match_program(prog, plen, s, slen):
    """Whether the token program prog[:plen] matches all of s[:slen].

    Tokens: literal = [0, byte], any = [1], star = [2], class = [3, 32-byte bitmap].
    """
    p = 0
    i = 0
    star_p = -1
    star_i = 0
    while True:
        if p < plen and prog[p] == T_STAR:
            star_p = p + 1
            star_i = i
            p += 1
            continue
        if i < slen and p < plen:
            c = s[i]
            if prog[p] == T_LIT:
                if prog[p + 1] == c:
                    p += 2
                    i += 1
                    continue
            elif prog[p] == T_ANY:
                p += 1
                i += 1
                continue
            elif prog[p] == T_CLASS:
                if prog[p + 1 + (c >> 3)] & (1 << (c & 7)):
                    p += 33
                    i += 1
                    continue
        elif i == slen and p == plen:
            return True
        if star_p < 0 or star_i >= slen:
            return False
        star_i += 1
        i = star_i
        p = star_p


def name_start(buf, start, end):
    """Where buf[start:end] starts once its leading './' and '/' are stripped."""
    while True:
        if end - start >= 2 and buf[start] == 46 and buf[start + 1] == 47:
            start += 2
        elif end - start >= 1 and buf[start] == 47:
            start += 1
        else:
            return start


def name_end(buf, start, end):
    """Where the (start-stripped) name buf[start:end] ends without its trailing '/'s;
    a name of one byte keeps it."""
    if end - start > 1:
        while end > start and buf[end - 1] == 47:
            end -= 1
    return end


def is_whiteout(buf, start, end):
    """Whether the normalized name buf[start:end] is an overlay whiteout ('.wh.' base);
    exclude never drops those, that would resurrect deleted files."""
    base = end
    while base > start and buf[base - 1] != 47:
        base -= 1
    return (end - base >= 4 and buf[base] == 46 and buf[base + 1] == 119
            and buf[base + 2] == 104 and buf[base + 3] == 46)


# -- the Python API ----------------------------------------------------------------------

def normalize_name(name):
    """Strip leading './' and '/' and a trailing '/', as tar names are matched."""
    name = bytes(name)
    start = name_start(name, 0, len(name))
    return name[start:name_end(name, start, len(name))]


def _expand(pattern):
    pattern = normalize_name(pattern)
    if not pattern:
        raise ValueError("empty pattern")
    yield pattern
    if pattern.startswith(b"**/"):
        yield pattern[3:]


def _class_bitmap(text):
    regex = re.compile(fnmatch.translate(text.decode("latin-1")), re.DOTALL)
    bitmap = bytearray(32)
    for c in range(256):
        if regex.match(chr(c)):
            bitmap[c >> 3] |= 1 << (c & 7)
    return bytes(bitmap)


def _compile(pattern):
    prog = bytearray()
    i, n = 0, len(pattern)
    star = False
    while i < n:
        c = pattern[i]
        i += 1
        if c == 0x2A:
            if not star:
                prog.append(T_STAR)
            star = True
            continue
        star = False
        if c == 0x3F:
            prog.append(T_ANY)
        elif c == 0x5B:
            j = i
            if j < n and pattern[j] == 0x21:
                j += 1
            if j < n and pattern[j] == 0x5D:
                j += 1
            while j < n and pattern[j] != 0x5D:
                j += 1
            if j >= n:
                prog += bytes((T_LIT, c))
            else:
                prog.append(T_CLASS)
                prog += _class_bitmap(pattern[i - 1:j + 1])
                i = j + 1
        else:
            prog += bytes((T_LIT, c))
    return bytes(prog)


class GlobSet:
    """A set of fnmatch patterns matched against tar member names (bytes)."""

    def __init__(self, patterns):
        self.patterns = tuple(p if isinstance(p, bytes) else p.encode("utf-8", "surrogateescape")
                              for p in patterns)
        self._programs = [_compile(p) for pattern in self.patterns for p in _expand(pattern)]

    def match(self, name):
        """True when any pattern matches the (already normalized) name."""
        name = bytes(name)
        for prog in self._programs:
            if match_program(prog, len(prog), name, len(name)):
                return True
        return False
