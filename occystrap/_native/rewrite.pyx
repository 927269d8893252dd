# cython: language_level=3, embedsignature=True
"""Streaming tar rewriter (Cython twin of rewrite_py.py).

The byte path runs in C without the GIL: member data is copied (or skipped) with
memcpy; headers, PAX extended headers (timestamp records dropped, the rest kept
verbatim) and GNU long names are checked, patched and re-checksummed in place.  Only
the decision to drop a member (exclude) calls back into Python, once per member.
What C cannot do in one go (a header group split across two feed() chunks, member
collection, sparse maps, end of archive, anything malformed) goes to the member logic
shared with the pure-Python twin, so both twins decide identically by construction.
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_Resize
from libc.string cimport memcmp, memcpy, memset

from .globset cimport c_match
from .tarstream cimport c_checksum, c_parse_number, c_signed_checksum
from . import rewrite_py as _py
from .globset import GlobSet
from . import tarstream as _tarstream
from ._common import MAX_EXT_HEADER, Member

__all__ = ["TarRewriter"]

# Must equal rewrite_py's state numbering (_HEADER, _EXTDATA, _SPARSE, _DATA, _END).
DEF S_HEADER = 0
DEF S_DATA = 3
DEF S_END = 4
DEF NOGIL_MIN = 65536       # below this a GIL round trip costs more than the copy

DEF G_OK = 0                # group handled
DEF G_SLOW = 1              # let the shared Python logic handle the header at pos
DEF MAX_FAST_PROGRAMS = 32  # exclude patterns matched in C without stopping the scan
DEF G_DECIDE = 2            # group parsed; Python must decide keep/drop (exclude)


cdef struct Scan:
    int state
    long long remaining
    bint emit
    bint rewrite
    bint patch
    bint headers            # may handle header groups at all (no collect, no ext pending)
    bint decide             # exclude active: stop with G_DECIDE before emitting a group
    unsigned char mtime[12]
    long long offset
    long long count
    long long max_ext
    int nprogs              # > 0: exclude patterns C can match, see _surely_kept
    const unsigned char* progs[MAX_FAST_PROGRAMS]
    Py_ssize_t prog_lens[MAX_FAST_PROGRAMS]


cdef struct Group:
    Py_ssize_t start        # first ext header
    Py_ssize_t main         # the member header
    Py_ssize_t end          # end of the member header
    long long size          # data size (PAX size overrides the header)
    const unsigned char* name
    Py_ssize_t name_len
    const unsigned char* prefix
    Py_ssize_t prefix_len
    const unsigned char* link
    Py_ssize_t link_len
    unsigned char type


cdef inline long long _padded(long long size) noexcept nogil:
    return (size + 511) // 512 * 512


cdef inline bint _is_zero(const unsigned char* b) noexcept nogil:
    cdef int i
    for i in range(512):
        if b[i]:
            return False
    return True


cdef inline bint _gnu_magic(const unsigned char* m) noexcept nogil:
    return memcmp(m, b"ustar  \0", 8) == 0


cdef inline void _checksum(unsigned char* h) noexcept nogil:
    cdef long long total
    cdef int i
    memset(h + 148, 32, 8)
    total = c_checksum(h)
    for i in range(5, -1, -1):
        h[148 + i] = 48 + (total & 7)
        total >>= 3
    h[154] = 0
    h[155] = 32


cdef inline void _patch(unsigned char* h, const unsigned char* mtime) noexcept nogil:
    memcpy(h + 136, mtime, 12)
    if _gnu_magic(h + 257):
        memset(h + 345, 0, 24)          # GNU atime/ctime
    _checksum(h)


cdef inline Py_ssize_t _cstrlen(const unsigned char* p, Py_ssize_t width) noexcept nogil:
    cdef Py_ssize_t n = 0
    while n < width and p[n] != 0:
        n += 1
    return n


cdef inline bint _valid_header(const unsigned char* h, long long* size) noexcept nogil:
    """Checksum and every numeric field as the Python parser reads them (anything it
    would reject goes to it, so both twins raise the same error)."""
    cdef long long stored, value
    if _is_zero(h):
        return False
    if c_parse_number(h + 148, 8, &stored) < 0 or (
            stored != c_checksum(h) and stored != c_signed_checksum(h)):
        return False
    if c_parse_number(h + 124, 12, size) < 0 or size[0] < 0:
        return False
    if (c_parse_number(h + 100, 8, &value) < 0 or c_parse_number(h + 108, 8, &value) < 0
            or c_parse_number(h + 116, 8, &value) < 0
            or c_parse_number(h + 136, 12, &value) < 0
            or c_parse_number(h + 329, 8, &value) < 0
            or c_parse_number(h + 337, 8, &value) < 0):
        return False
    return True


cdef inline bint _key_is(const unsigned char* k, Py_ssize_t n, const char* word) noexcept nogil:
    cdef Py_ssize_t i = 0
    while i < n:
        if word[i] == 0 or <unsigned char>word[i] != k[i]:
            return False
        i += 1
    return word[n] == 0


cdef inline bint _time_key(const unsigned char* k, Py_ssize_t n) noexcept nogil:
    return (_key_is(k, n, b"mtime") or _key_is(k, n, b"atime") or _key_is(k, n, b"ctime")
            or _key_is(k, n, b"LIBARCHIVE.creationtime"))


cdef Py_ssize_t _pax(const unsigned char* d, Py_ssize_t size, Group* g, unsigned char* out,
                     bint filter) noexcept nogil:
    """Walk PAX records: note path/linkpath/size in g; with filter, copy the records
    that are not timestamps to out.  Returns bytes copied, or -1 when unsure (the
    Python logic then decides, and raises on a malformed record)."""
    cdef Py_ssize_t pos = 0, space, stop, equals, length, kept = 0
    cdef long long value
    while pos < size and d[pos] != 0:
        space = pos
        length = 0
        while space < size and 48 <= d[space] <= 57:
            length = length * 10 + (d[space] - 48)
            if length > size:
                return -1
            space += 1
        if space == pos or space >= size or d[space] != 32:
            return -1
        stop = pos + length
        if length <= 0 or stop > size or d[stop - 1] != 10:
            return -1
        equals = space + 1
        while equals < stop - 1 and d[equals] != 61:
            equals += 1
        if equals >= stop - 1:
            return -1
        if _key_is(d + space + 1, equals - space - 1, b"path"):
            g.name = d + equals + 1
            g.name_len = stop - 1 - equals - 1
            g.prefix_len = 0
        elif _key_is(d + space + 1, equals - space - 1, b"linkpath"):
            g.link = d + equals + 1
            g.link_len = stop - 1 - equals - 1
        elif _key_is(d + space + 1, equals - space - 1, b"size"):
            if c_parse_decimal(d + equals + 1, stop - 1 - equals - 1, &value) < 0:
                return -1
            g.size = value
        if filter and not _time_key(d + space + 1, equals - space - 1):
            memcpy(out + kept, d + pos, length)
            kept += length
        pos = stop
    return kept


cdef int c_parse_decimal(const unsigned char* p, Py_ssize_t n, long long* out) noexcept nogil:
    cdef long long value = 0
    cdef Py_ssize_t i
    if n <= 0 or n > 18:
        return -1
    for i in range(n):
        if p[i] < 48 or p[i] > 57:
            return -1
        value = value * 10 + (p[i] - 48)
    out[0] = value
    return 0


cdef int _parse_group(Scan* s, const unsigned char* src, Py_ssize_t pos, Py_ssize_t n,
                      Group* g) noexcept nogil:
    """Find a complete header group (ext headers + member header) at pos; fill g."""
    cdef const unsigned char* h
    cdef long long size
    cdef unsigned char t
    cdef Py_ssize_t p = pos
    g.start = pos
    g.size = -1
    g.name = NULL
    g.link = NULL
    g.prefix_len = 0
    while True:
        if n - p < 512:
            return G_SLOW
        h = src + p
        if not _valid_header(h, &size):
            return G_SLOW
        t = h[156]
        if t == 120 or t == 76 or t == 75:          # x, L, K
            if size > s.max_ext or p + 512 + _padded(size) > n:
                return G_SLOW
            if t == 120:
                if _pax(h + 512, size, g, NULL, False) < 0:
                    return G_SLOW
            elif t == 76:
                g.name = h + 512
                g.name_len = _cstrlen(h + 512, size)
                g.prefix_len = 0
            else:
                g.link = h + 512
                g.link_len = _cstrlen(h + 512, size)
            p += 512 + _padded(size)
            continue
        if t == 103 or (t == 83 and h[482]):        # global header, extended sparse
            return G_SLOW
        break
    g.main = p
    g.end = p + 512
    g.type = t
    if g.size < 0:
        g.size = size
    if g.name == NULL:
        g.name = h
        g.name_len = _cstrlen(h, 100)
        if not _gnu_magic(h + 257) and memcmp(h + 257, b"ustar\0", 6) == 0:
            g.prefix = h + 345
            g.prefix_len = _cstrlen(h + 345, 155)
    if g.link == NULL:
        g.link = h + 157
        g.link_len = _cstrlen(h + 157, 100)
    return G_OK


cdef Py_ssize_t _emit_group(Scan* s, const unsigned char* src, Group* g,
                            unsigned char* dst, Py_ssize_t dpos) noexcept nogil:
    """Write a parsed group (patched as needed) at dst+dpos; return the new dpos."""
    cdef Py_ssize_t p = g.start, kept
    cdef long long size, total
    cdef const unsigned char* h
    cdef int i
    while p < g.main:
        h = src + p
        c_parse_number(h + 124, 12, &size)
        if h[156] == 120 and s.patch:
            kept = _pax(h + 512, size, g, dst + dpos + 512, True)
            if kept > 0:
                memcpy(dst + dpos, h, 512)
                total = kept
                dst[dpos + 135] = 0
                for i in range(10, -1, -1):
                    dst[dpos + 124 + i] = 48 + (total & 7)
                    total >>= 3
                _patch(dst + dpos, s.mtime)
                memset(dst + dpos + 512 + kept, 0, _padded(kept) - kept)
                dpos += 512 + _padded(kept)
        else:
            memcpy(dst + dpos, h, 512 + _padded(size))
            if s.patch:
                _patch(dst + dpos, s.mtime)
            dpos += 512 + _padded(size)
        p += 512 + _padded(size)
    memcpy(dst + dpos, src + g.main, 512)
    if s.patch:
        _patch(dst + dpos, s.mtime)
    return dpos + 512


cdef inline void _enter_member(Scan* s, Group* g, bint keep) noexcept nogil:
    s.offset += g.end - g.start
    s.count += 1
    s.emit = keep
    s.remaining = 0 if 49 <= g.type <= 54 else _padded(g.size)   # '1'..'6': no data
    s.state = S_DATA if s.remaining else S_HEADER


cdef Py_ssize_t _scan(Scan* s, const unsigned char* src, Py_ssize_t pos, Py_ssize_t n,
                      unsigned char* dst, Py_ssize_t* dpos, Group* g, int* why) noexcept nogil:
    """Run the fast path from pos; return where it stopped, with the reason in why."""
    cdef long long take
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
        if s.state != S_HEADER or not s.headers:
            why[0] = G_SLOW
            return pos
        if _parse_group(s, src, pos, n, g) != G_OK:
            why[0] = G_SLOW
            return pos
        if s.decide and not (s.nprogs and _surely_kept(s, g)):
            why[0] = G_DECIDE
            return pos
        if s.rewrite:
            dpos[0] = _emit_group(s, src, g, dst, dpos[0])
        _enter_member(s, g, True)
        pos = g.end
    why[0] = G_OK
    return pos


cdef bint _surely_kept(Scan* s, Group* g) noexcept nogil:
    """True when the Python _keep would keep this member for certain, so the scan need
    not stop for it (a stop per member costs more than the rest of the scan): no prefix
    field, not a hard link, and its name, normalized as globset_py.normalize_name does,
    is a whiteout or matches no pattern.  Only set up while no directory is excluded."""
    cdef const unsigned char* n = g.name
    cdef Py_ssize_t start = 0, end = g.name_len, base
    cdef int i
    if g.prefix_len or g.type == 49:
        return False
    while True:
        if end - start >= 2 and n[start] == 46 and n[start + 1] == 47:     # "./"
            start += 2
        elif end - start >= 1 and n[start] == 47:                         # "/"
            start += 1
        else:
            break
    if end - start > 1:
        while end > start and n[end - 1] == 47:
            end -= 1
    if start >= end:
        return False        # "./", ".//": Python strips a directory's "/" first, then "./"
    base = end
    while base > start and n[base - 1] != 47:
        base -= 1
    if end - base >= 4 and memcmp(n + base, b".wh.", 4) == 0:
        return True
    for i in range(s.nprogs):
        if c_match(s.progs[i], s.prog_lens[i], n + start, end - start):
            return False
    return True


cdef object _plain_member(const unsigned char* src, Group* g, long long offset):
    """The Member of a group without extended headers, made here from the header fields
    _valid_header already checked: what parse_header + resolve_member give, without a
    Header tuple and two Python calls per member."""
    cdef const unsigned char* h = src + g.main
    cdef long long mode, uid, gid, mtime
    cdef unsigned char kind = g.type
    c_parse_number(h + 100, 8, &mode)
    c_parse_number(h + 108, 8, &uid)
    c_parse_number(h + 116, 8, &gid)
    c_parse_number(h + 136, 12, &mtime)
    name = _member_name(g, &kind)
    return Member(name, (<char*>&kind)[:1], g.size, mode, mtime, uid, gid,
                  g.link[:g.link_len], offset, None)


cdef bytes _member_name(Group* g, unsigned char* kind):
    """The name as resolve_member gives it, and the kind: an old-style regular file
    ('\\0') named with a trailing '/' is a directory, and directories lose the '/'."""
    name = _group_name(g)
    if kind[0] == 0 and name.endswith(b"/"):
        kind[0] = 53
    if kind[0] == 53 and len(name) > 1:
        name = name.rstrip(b"/")
    return name


cdef bytes _group_name(Group* g):
    if g.prefix_len:
        return g.prefix[:g.prefix_len] + b"/" + g.name[:g.name_len]
    return g.name[:g.name_len]


class TarRewriter(_py.TarRewriter):
    __doc__ = _py.TarRewriter.__doc__
    _ts = _tarstream

    def feed(self, data):
        """Consume a chunk; return the rewritten bytes it completes (a bytearray)."""
        cdef const unsigned char[:] view
        cdef Py_ssize_t n, pos = 0, dpos = 0, cap
        cdef Scan s
        cdef Group g
        cdef int why = G_OK
        cdef bytearray out
        cdef unsigned char* dst
        cdef unsigned char kind
        cdef bint fast = True
        cdef Py_ssize_t ext_at, ext_size
        cdef long long number
        cdef const char* base
        if isinstance(data, memoryview):
            data = data.cast("B")
        view = data
        n = view.shape[0]
        if n == 0:
            return bytearray()
        cap = n + 1024 if self._rewrite else 0     # only parsing: nothing is ever emitted
        out = bytearray(cap)
        dst = <unsigned char*>PyByteArray_AS_STRING(out)
        s.rewrite = self._rewrite
        s.patch = self._mtime is not None
        s.decide = self._exclude is not None or self._collect
        s.max_ext = MAX_EXT_HEADER
        programs = ()
        if (not self._collect and isinstance(self._exclude, GlobSet)
                and len(self._exclude._programs) <= MAX_FAST_PROGRAMS):
            programs = self._exclude._programs     # bytes kept alive by the GlobSet
        for i, program in enumerate(programs):
            s.progs[i] = <const unsigned char*>(<bytes>program)
            s.prog_lens[i] = len(program)
        if s.patch:
            memcpy(s.mtime, <const unsigned char*>self._mtime, 12)
        while pos < n:
            if self._state == S_DATA or (fast and self._state == S_HEADER
                                         and not self._buf and not self._ext):
                s.state = self._state
                s.remaining = self._remaining
                s.emit = self._emit
                s.offset = self._offset
                s.count = 0
                s.nprogs = 0 if self._excluded_dirs else len(programs)
                s.headers = fast and not self._ext
                if s.rewrite and dpos + (n - pos) > cap:    # held bytes were emitted earlier
                    cap = dpos + (n - pos)
                    PyByteArray_Resize(out, cap)
                    dst = <unsigned char*>PyByteArray_AS_STRING(out)
                if n - pos >= NOGIL_MIN:
                    with nogil:
                        pos = _scan(&s, &view[0], pos, n, dst, &dpos, &g, &why)
                else:
                    pos = _scan(&s, &view[0], pos, n, dst, &dpos, &g, &why)
                if why == G_DECIDE:
                    member = None
                    if self._collect and g.start == g.main:
                        member = _plain_member(&view[0], &g, s.offset + (g.end - g.start))
                    if self._collect and member is None:
                        base = <const char*>&view[0]
                        ext = []
                        ext_at = g.start
                        while ext_at < g.main:
                            c_parse_number(&view[ext_at] + 124, 12, &number)
                            ext_size = number
                            ext.append((base[ext_at + 156:ext_at + 157],
                                        base[ext_at + 512:ext_at + 512 + ext_size]))
                            ext_at += 512 + _padded(ext_size)
                        member = self._ts.resolve_member(
                            self._ts.parse_header(base[g.main:g.end]), ext,
                            s.offset + (g.end - g.start))
                    if member is not None:
                        if self._mtime is not None:
                            member = member._replace(mtime=self._ts.parse_number(self._mtime))
                        name, kind, link = member.name, member.type[0], member.linkname
                    else:
                        kind = g.type
                        name = _member_name(&g, &kind)
                        link = g.link[:g.link_len]
                    keep = self._exclude is None or self._keep(name, bytes([kind]), link)
                    if keep and member is not None:
                        self.members.append(member)
                    if keep and s.rewrite:
                        dpos = _emit_group(&s, &view[0], &g, dst, dpos)
                    if not keep:
                        self.dropped += 1
                    _enter_member(&s, &g, keep)
                    pos = g.end
                self._state = s.state
                self._remaining = s.remaining
                self._emit = s.emit
                self._offset = s.offset
                self.count += s.count
                if s.state == S_HEADER:
                    self._need = 512
                if pos >= n or why != G_SLOW:
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
