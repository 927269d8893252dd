# cython: language_level=3, embedsignature=True
"""Tar header parsing (Cython twin of tarstream_py.py).

The per-header hot functions (checksum, number and header parsing) run in C; cold
formatting helpers are shared with the pure-Python twin, so both encode identically.
"""
from ._common import BLOCK as _BLOCK, TarError
from .tarstream_py import (Header, filter_pax, format_header, format_number, format_pax, padded,
                           parse_pax, resolve_member)

__all__ = ["Header", "parse_header", "parse_number", "parse_pax", "format_pax",
           "format_number", "format_header", "checksum", "set_checksum", "padded",
           "resolve_member", "filter_pax"]


cdef long long c_checksum(const unsigned char* b) noexcept nogil:
    cdef long long total = 256      # the 8-byte chksum field counted as spaces
    cdef int i
    for i in range(148):
        total += b[i]
    for i in range(156, 512):
        total += b[i]
    return total


cdef long long c_signed_checksum(const unsigned char* b) noexcept nogil:
    cdef long long total = 256
    cdef int i
    for i in range(148):
        total += <signed char>b[i]
    for i in range(156, 512):
        total += <signed char>b[i]
    return total


cdef int c_parse_number(const unsigned char* f, int width, long long* out) noexcept nogil:
    """Octal text (spaces/NUL tolerated) or GNU base-256; returns -1 on bad octal."""
    cdef long long value = 0
    cdef int i = 0, end = width
    if f[0] & 0x80:
        for i in range(1, width):
            value = (value << 8) | f[i]
        if f[0] == 0xFF:
            value -= (<long long>1) << (8 * (width - 1))
        out[0] = value
        return 0
    for i in range(width):
        if f[i] == 0:
            end = i
            break
    i = 0
    while i < end and f[i] == 32:
        i += 1
    while end > i and f[end - 1] == 32:
        end -= 1
    while i < end:
        if f[i] < 48 or f[i] > 55:
            return -1
        value = value * 8 + (f[i] - 48)
        i += 1
    out[0] = value
    return 0


def checksum(block):
    """Unsigned header checksum with the chksum field counted as spaces."""
    cdef const unsigned char[:] b = block
    return c_checksum(&b[0])


def set_checksum(block):
    """Write the checksum of a mutable 512-byte header in place (6 octal digits, NUL, space)."""
    cdef unsigned char[:] b = block
    cdef long long total = 0
    cdef int i
    for i in range(148, 156):
        b[i] = 32
    total = c_checksum(&b[0])
    for i in range(5, -1, -1):
        b[148 + i] = 48 + (total & 7)
        total >>= 3
    b[154] = 0
    b[155] = 32


def parse_number(field):
    """Decode a numeric header field: octal text, or GNU base-256 when the top bit is set."""
    cdef bytes raw = bytes(field)
    cdef long long value
    if len(raw) > 8 and raw[0] & 0x80:      # may exceed 64 bits: let Python do it
        from .tarstream_py import parse_number as slow
        return slow(raw)
    if c_parse_number(raw, len(raw), &value) < 0:
        raise TarError("invalid number in tar header: %r" % raw.split(b"\0")[0].strip(b" "))
    return value


cdef bytes _cstr(const unsigned char* p, int width):
    cdef int n = 0
    while n < width and p[n] != 0:
        n += 1
    return p[:n]


cdef long long _num(const unsigned char* p, int width) except? -1:
    cdef long long value
    if c_parse_number(p, width, &value) < 0:
        raise TarError("invalid number in tar header: %r" % _cstr(p, width).strip(b" "))
    return value


def parse_header(block):
    """Parse one 512-byte header block.

    :returns: a Header, or None for an all-zero (end-of-archive) block.
    :raises TarError: on a checksum mismatch or a malformed number.
    """
    cdef const unsigned char[:] view = block
    cdef const unsigned char* b
    cdef long long stored
    cdef int i
    cdef bint gnu
    if view.shape[0] < _BLOCK:
        raise TarError("truncated tar header")
    b = &view[0]
    for i in range(512):
        if b[i]:
            break
    else:
        return None
    if c_parse_number(b + 148, 8, &stored) < 0 or (
            stored != c_checksum(b) and stored != c_signed_checksum(b)):
        raise TarError("bad tar header checksum")
    gnu = b[257:265] == b"ustar  \0"
    name = _cstr(b, 100)
    if not gnu and b[257:263] == b"ustar\0":
        prefix = _cstr(b + 345, 155)
        if prefix:
            name = prefix + b"/" + name
    return Header(name, _num(b + 100, 8), _num(b + 108, 8), _num(b + 116, 8),
                  _num(b + 124, 12), _num(b + 136, 12), b[156:157], _cstr(b + 157, 100),
                  _cstr(b + 265, 32), _cstr(b + 297, 32), _num(b + 329, 8),
                  _num(b + 337, 8), gnu)
