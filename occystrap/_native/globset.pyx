# cython: language_level=3, embedsignature=True
"""Compiled exclude/search matcher (Cython twin of globset_py.py).

Patterns compile to a token program (literal byte, any byte, star, 256-bit class);
matching is the classic greedy star matcher with one backtrack point, which is exact
for these tokens because `*` may match any byte including `/` (fnmatch semantics).
Byte classes are computed with fnmatch itself at compile time, so `[...]` edge cases
(ranges, `!`, a leading `]`) mean exactly what fnmatch says they mean.
"""
import fnmatch
import re

from .globset_py import _expand, normalize_name

__all__ = ["GlobSet", "normalize_name"]

DEF T_LIT = 0
DEF T_ANY = 1
DEF T_STAR = 2
DEF T_CLASS = 3


cdef bint c_match(const unsigned char* prog, Py_ssize_t plen, const unsigned char* s,
                  Py_ssize_t slen) noexcept nogil:
    # prog: sequence of tokens; literal = [0, byte], any = [1], star = [2],
    # class = [3, 32-byte bitmap]
    cdef Py_ssize_t p = 0, i = 0, star_p = -1, star_i = 0
    cdef unsigned char c
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
        cdef bytes s = bytes(name)
        cdef bytes prog
        for prog in self._programs:
            if c_match(prog, len(prog), s, len(s)):
                return True
        return False
