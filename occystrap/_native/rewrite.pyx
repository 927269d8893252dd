# cython: language_level=3, embedsignature=True
"""Streaming tar rewriter (Cython twin of rewrite_py.py).

The byte path runs in C without the GIL: member data is copied (or skipped) with
memcpy, and plain ustar/GNU headers are checked, mtime-patched and re-checksummed in
place.  Headers that need decisions (PAX and GNU long-name extensions, exclusion,
member collection, sparse maps, end of archive) go to the member logic shared with
the pure-Python twin, so both twins decide identically by construction.
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_Resize
from libc.string cimport memcpy, memset

from .tarstream cimport c_checksum, c_parse_number, c_signed_checksum
from . import rewrite_py as _py

__all__ = ["TarRewriter"]

# Must equal rewrite_py's state numbering (_HEADER, _EXTDATA, _SPARSE, _DATA, _END).
DEF S_HEADER = 0
DEF S_DATA = 3
DEF S_END = 4
DEF NOGIL_MIN = 65536       # below this a GIL round trip costs more than the copy


cdef struct Scan:
    int state
    long long remaining
    bint emit
    bint rewrite
    bint patch
    unsigned char mtime[12]
    long long offset
    long long count
    bint headers            # may handle plain headers (no exclude/collect/ext)


cdef inline bint _is_zero(const unsigned char* b) noexcept nogil:
    cdef int i
    for i in range(512):
        if b[i]:
            return False
    return True


cdef inline void _patch(unsigned char* h, const unsigned char* mtime) noexcept nogil:
    cdef long long total
    cdef int i
    memcpy(h + 136, mtime, 12)
    if memcmp6(h + 257):
        memset(h + 345, 0, 24)          # GNU atime/ctime
    memset(h + 148, 32, 8)
    total = c_checksum(h)
    for i in range(5, -1, -1):
        h[148 + i] = 48 + (total & 7)
        total >>= 3
    h[154] = 0
    h[155] = 32


cdef inline bint memcmp6(const unsigned char* m) noexcept nogil:
    # GNU magic "ustar  \0"
    return (m[0] == 117 and m[1] == 115 and m[2] == 116 and m[3] == 97 and m[4] == 114
            and m[5] == 32 and m[6] == 32 and m[7] == 0)


cdef Py_ssize_t _scan(Scan* s, const unsigned char* src, Py_ssize_t pos, Py_ssize_t n,
                      unsigned char* dst, Py_ssize_t* dpos) noexcept nogil:
    """Run the fast path from pos; return where it stopped (n, or a header it can't do)."""
    cdef long long take, size, stored
    cdef const unsigned char* h
    cdef unsigned char t
    while pos < n:
        if s.state == S_DATA:
            take = s.remaining if s.remaining < n - pos else n - pos
            if s.emit and s.rewrite:
                memcpy(dst + dpos[0], src + pos, take)
                dpos[0] += take
            pos += take
            s.offset += take
            s.remaining -= take
            if s.remaining == 0:
                s.state = S_HEADER
            continue
        if s.state != S_HEADER or not s.headers or n - pos < 512:
            return pos
        h = src + pos
        t = h[156]
        if (t == 120 or t == 103 or t == 76 or t == 75 or (t == 83 and h[482])
                or _is_zero(h)):
            return pos                      # x, g, L, K, extended sparse, end marker
        if c_parse_number(h + 148, 8, &stored) < 0 or (
                stored != c_checksum(h) and stored != c_signed_checksum(h)):
            return pos
        if c_parse_number(h + 124, 12, &size) < 0 or size < 0:
            return pos
        if s.rewrite:
            memcpy(dst + dpos[0], h, 512)
            if s.patch:
                _patch(dst + dpos[0], s.mtime)
            dpos[0] += 512
        pos += 512
        s.offset += 512
        s.count += 1
        s.emit = True
        if 49 <= t <= 54:                   # '1'..'6' carry no data
            size = 0
        s.remaining = (size + 511) // 512 * 512
        if s.remaining:
            s.state = S_DATA
    return pos


class TarRewriter(_py.TarRewriter):
    __doc__ = _py.TarRewriter.__doc__

    def feed(self, data):
        """Consume a chunk; return the rewritten bytes it completes (a bytearray)."""
        cdef const unsigned char[:] view
        cdef Py_ssize_t n, pos = 0, start, dpos = 0, cap
        cdef Scan s
        cdef bytearray out
        cdef unsigned char* dst
        cdef bint fast = self._exclude is None and not self._collect
        if isinstance(data, memoryview):
            data = data.cast("B")
        view = data
        n = view.shape[0]
        if n == 0:
            return bytearray()
        cap = n + 1024
        out = bytearray(cap)
        dst = <unsigned char*>PyByteArray_AS_STRING(out)
        s.rewrite = self._rewrite
        s.patch = self._mtime is not None
        if s.patch:
            memcpy(s.mtime, <const unsigned char*>self._mtime, 12)
        while pos < n:
            if (self._state == S_DATA or (fast and self._state == S_HEADER
                                          and not self._buf and not self._ext)):
                s.state = self._state
                s.remaining = self._remaining
                s.emit = self._emit
                s.offset = self._offset
                s.count = 0
                s.headers = fast and not self._ext
                start = pos
                if dpos + (n - pos) > cap:      # held bytes were emitted earlier in this call
                    cap = dpos + (n - pos)
                    PyByteArray_Resize(out, cap)
                    dst = <unsigned char*>PyByteArray_AS_STRING(out)
                if n - pos >= NOGIL_MIN:
                    with nogil:
                        pos = _scan(&s, &view[0], pos, n, dst, &dpos)
                else:
                    pos = _scan(&s, &view[0], pos, n, dst, &dpos)
                self._state = s.state
                self._remaining = s.remaining
                self._emit = s.emit
                self._offset = s.offset
                self.count += s.count
                if s.state == S_HEADER:
                    self._need = 512
                if pos >= n or (pos > start and s.state == S_DATA):
                    continue
            if self._state == S_END:
                self._offset += n - pos
                break
            if self._state == S_DATA:
                continue
            # Slow path: one header-ish step through the shared member logic.
            take = min(self._need - len(self._buf), n - pos)
            self._buf += view[pos:pos + take]
            pos += take
            if len(self._buf) < self._need:
                break
            piece = bytearray()
            self._step(piece)
            if piece:
                if dpos + len(piece) > cap:
                    cap = dpos + len(piece) + n
                    PyByteArray_Resize(out, cap)
                    dst = <unsigned char*>PyByteArray_AS_STRING(out)
                memcpy(dst + dpos, <const unsigned char*>PyByteArray_AS_STRING(piece),
                       len(piece))
                dpos += len(piece)
        PyByteArray_Resize(out, dpos)
        self._out += dpos
        return out
