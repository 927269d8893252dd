# cython: language_level=3, embedsignature=True
"""Streaming tar rewriter: the C driver of rewrite_py's state machine.

The byte path runs in C without the GIL: member data is copied (or skipped) with
memcpy; header groups (a member header after at most one PAX or GNU long-name header)
that lie whole in the chunk are checked, patched and re-checksummed in place.  This file holds
no tar rule of its own: what a valid header is, how a number or a PAX record reads,
which type has data, which PAX keys are timestamps and how a name is normalized and
matched are the functions of tarstream_py.py and globset_py.py, compiled from the same
source the pure-Python twin runs (cimported here).  Whatever the fast path does not
take on (a group split across two feed() chunks, several extended headers for one
member, member collection with extended headers, global headers, sparse maps, end of
archive, anything a rule refuses) goes to
rewrite_py's own logic, which also raises every error, so both twins give the same
bytes and the same errors; tests/native/test_differential.py holds them to it.
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_Resize
from libc.string cimport memcpy, memset

from .globset cimport is_whiteout, match_program, name_end, name_start
from .tarstream cimport (cstr_len, drops_time_record, field_number, has_data,
                         has_pax_records, header_problem, header_type, is_extension,
                         long_name_end, is_number, normalize_header, padded, pax_decimal,
                         size_ok, pax_equals, pax_key, pax_key_start, pax_record_end, pax_time,
                         prefix_len, put_octal, set_header_checksum, strip_slashes)
from . import rewrite_py as _py
from .globset import GlobSet
from . import tarstream as _tarstream
from ._common import MAX_EXT_HEADER, Member

__all__ = ["TarRewriter"]

# rewrite_py's state numbering (_HEADER, _EXTDATA, _SPARSE, _DATA, _END), checked below.
DEF S_HEADER = 0
DEF S_DATA = 3
DEF S_END = 4
if (_py._HEADER, _py._DATA, _py._END) != (S_HEADER, S_DATA, S_END):
    raise ImportError("rewrite.pyx and rewrite_py.py number their states differently")
DEF NOGIL_MIN = 65536       # below this a GIL round trip costs more than the copy

DEF G_OK = 0                # group handled
DEF G_SLOW = 1              # let the shared Python logic handle the header at pos
DEF G_DECIDE = 2            # group parsed; Python must decide keep/drop (exclude)
DEF MAX_FAST_PROGRAMS = 32  # exclude patterns matched in C without stopping the scan


cdef struct Scan:
    int state
    long long remaining
    bint emit
    bint rewrite
    bint patch
    bint headers            # may handle header groups at all (no collect, no ext pending)
    bint decide             # exclude active: stop with G_DECIDE before emitting a group
    unsigned char mtime[12]
    long long ts            # mtime's value, for clamp
    bint clamp
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
    bint name_set           # by an extended header (then the ustar prefix is not used)
    const unsigned char* prefix
    Py_ssize_t prefix_len
    const unsigned char* link
    Py_ssize_t link_len
    unsigned char type
    bint mtime_dropped      # _pax with filter dropped an mtime record


cdef Py_ssize_t _pax(Scan* s, const unsigned char* d, Py_ssize_t size, Group* g,
                     unsigned char* out, bint filter) noexcept nogil:
    """Walk PAX records with tarstream's rules: what path/linkpath/size say goes into g
    (the last record of a key wins, as in a dict); with filter, copy the records that
    normalize-timestamps keeps (drops_time_record) to out.  Returns bytes copied, or -1 when a record
    or a number value is malformed (the Python logic then raises its error)."""
    cdef Py_ssize_t pos = 0, key, equals, stop, kept = 0
    cdef int which
    cdef long long value
    while pos < size and d[pos] != 0:
        stop = pax_record_end(d, pos, size)
        if stop < 0:
            return -1
        key = pax_key_start(d, pos)
        equals = pax_equals(d, key, stop)
        which = pax_key(d, key, equals)
        if which == 1 or which == 8:                        # path, GNU.sparse.name
            g.name = d + equals + 1
            g.name_len = (strip_slashes(d, equals + 1, stop - 1) if which == 1
                          else stop - 1) - equals - 1
            g.name_set = True
        elif which == 2:                                    # linkpath
            g.link = d + equals + 1
            g.link_len = stop - 1 - equals - 1
        elif 3 <= which <= 6:                               # size, uid, gid, mtime
            value = (pax_time(d, equals + 1, stop - 1) if which == 6
                     else pax_decimal(d, equals + 1, stop - 1))
            if not is_number(value) or (which == 3 and not size_ok(value)):
                return -1
            if which == 3:
                g.size = value
        if filter and drops_time_record(d, key, equals, stop, s.ts, s.clamp):
            g.mtime_dropped |= which == 6
        elif filter:
            memcpy(out + kept, d + pos, stop - pos)
            kept += stop - pos
        pos = stop
    return kept


cdef int _parse_group(Scan* s, const unsigned char* src, Py_ssize_t pos, Py_ssize_t n,
                      Group* g) noexcept nogil:
    """Find a complete header group at pos (the member header, after at most one PAX or
    GNU long-name header); fill g.  Several extended headers (whose precedence
    resolve_member decides), a global header, a sparse map and anything the rules refuse
    go to the Python logic (G_SLOW)."""
    cdef const unsigned char* h
    cdef long long size
    cdef unsigned char t
    cdef Py_ssize_t p = pos, ext = -1
    g.start = pos
    while True:
        if n - p < 512:
            return G_SLOW
        h = src + p
        if header_problem(h, 0) != 0:
            return G_SLOW
        size = field_number(h, 124, 12)
        t = h[156]
        if is_extension(t):
            if (t == 103 or ext >= 0 or size > s.max_ext
                    or p + 512 + padded(size) > n):
                return G_SLOW
            ext = p
            p += 512 + padded(size)
            continue
        if t == 83:                                 # sparse map
            return G_SLOW
        break
    g.main = p
    g.end = p + 512
    g.type = header_type(h, 0)
    g.size = size
    g.name = h
    g.name_len = cstr_len(h, 0, 100)
    g.name_set = False
    if g.type == 53:
        g.name_len = strip_slashes(h, 0, g.name_len)
    g.prefix = h + 345
    g.prefix_len = prefix_len(h, 0)
    g.link = h + 157
    g.link_len = cstr_len(h, 157, 100)
    if ext >= 0:
        h = src + ext
        size = field_number(h, 124, 12)
        if has_pax_records(h[156]):
            if _pax(s, h + 512, size, g, NULL, False) < 0:
                return G_SLOW
        elif h[156] == 76:                          # GNU long name
            g.name = h + 512
            g.name_len = long_name_end(h, 512, 512 + cstr_len(h, 512, size),
                                       g.type == 53) - 512
            g.name_set = True
        else:                                       # GNU long link
            g.link = h + 512
            g.link_len = cstr_len(h, 512, size)
    if g.name_set:
        g.prefix_len = 0
    return G_OK


cdef Py_ssize_t _emit_group(Scan* s, const unsigned char* src, Group* g,
                            unsigned char* dst, Py_ssize_t dpos) noexcept nogil:
    """Write a parsed group (patched as needed) at dst+dpos; return the new dpos."""
    cdef Py_ssize_t p = g.start, kept
    cdef long long size
    cdef const unsigned char* h
    cdef Group scratch
    scratch.mtime_dropped = False
    while p < g.main:
        h = src + p
        size = field_number(h, 124, 12)
        if s.patch and has_pax_records(h[156]):
            kept = _pax(s, h + 512, size, &scratch, dst + dpos + 512, True)
            if kept > 0:
                memcpy(dst + dpos, h, 512)
                put_octal(dst + dpos, 124, 12, kept)
                set_header_checksum(dst + dpos, 0)    # clamp may not patch it
                normalize_header(dst + dpos, 0, s.mtime, s.ts, s.clamp, False)
                memset(dst + dpos + 512 + kept, 0, padded(kept) - kept)
                dpos += 512 + padded(kept)
        else:
            memcpy(dst + dpos, h, 512 + padded(size))
            if s.patch:
                normalize_header(dst + dpos, 0, s.mtime, s.ts, s.clamp, False)
            dpos += 512 + padded(size)
        p += 512 + padded(size)
    memcpy(dst + dpos, src + g.main, 512)
    if s.patch:
        normalize_header(dst + dpos, 0, s.mtime, s.ts, s.clamp, scratch.mtime_dropped)
    return dpos + 512


cdef inline void _enter_member(Scan* s, Group* g, bint keep) noexcept nogil:
    s.offset += g.end - g.start
    s.count += 1
    s.emit = keep
    s.remaining = padded(g.size) if has_data(g.type) else 0
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
    field, not a hard link, and its name, normalized by globset's rules, is a whiteout
    or matches no pattern.  Only set up while no directory is excluded."""
    cdef Py_ssize_t start, end
    cdef int i
    if g.prefix_len or g.type == 49:
        return False
    start = name_start(g.name, 0, g.name_len)
    end = name_end(g.name, start, g.name_len)
    if start >= end:
        return False        # an empty normalized name: the Python rule decides
    if is_whiteout(g.name, start, end):
        return True
    for i in range(s.nprogs):
        if match_program(s.progs[i], s.prog_lens[i], g.name + start, end - start):
            return False
    return True


cdef object _plain_member(const unsigned char* src, Group* g, long long offset):
    """The Member of a group without extended headers, made here from the header fields
    header_problem already checked: what parse_header + resolve_member give, without a
    Header tuple and two Python calls per member."""
    cdef const unsigned char* h = src + g.main
    return Member(_group_name(g), (<char*>&g.type)[:1], g.size, field_number(h, 100, 8),
                  field_number(h, 136, 12), field_number(h, 108, 8), field_number(h, 116, 8),
                  g.link[:g.link_len], offset, None)


cdef bytes _group_name(Group* g):
    if g.prefix_len:
        return g.prefix[:g.prefix_len] + b"/" + g.name[:g.name_len]
    return g.name[:g.name_len]


class TarRewriter(_py.TarRewriter):
    __doc__ = _py.TarRewriter.__doc__
    _ts = _tarstream

    def feed(self, data):
        """Consume a chunk; return the rewritten bytes it completes (a bytearray)."""
        cdef const unsigned char[::1] view
        cdef Py_ssize_t n, pos = 0, dpos = 0, cap
        cdef Scan s
        cdef Group g
        cdef int why = G_OK
        cdef bytearray out
        cdef unsigned char* dst
        cdef unsigned char kind
        cdef Py_ssize_t ext_at, ext_size
        cdef long long number
        cdef const char* base
        if not isinstance(data, bytes):
            # An immutable, contiguous copy: the C path reads header bytes again after
            # Python code (exclude) has run, and takes a flat pointer to the buffer.
            data = bytes(data)
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
        if (not self._collect and type(self._exclude) is GlobSet
                and len(self._exclude._programs) <= MAX_FAST_PROGRAMS):
            programs = self._exclude._programs     # bytes kept alive by the GlobSet
        for i, program in enumerate(programs):
            s.progs[i] = <const unsigned char*>(<bytes>program)
            s.prog_lens[i] = len(program)
        s.ts = self._time
        s.clamp = self._clamp
        if s.patch:
            memcpy(s.mtime, <const unsigned char*>self._mtime, 12)
        while pos < n:
            if self._state == S_DATA or (self._state == S_HEADER
                                         and not self._buf and not self._ext):
                s.state = self._state
                s.remaining = self._remaining
                s.emit = self._emit
                s.offset = self._offset
                s.count = 0
                s.nprogs = 0 if self._excluded_dirs else len(programs)
                s.headers = not self._ext and not self._globals
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
                            ext_size = field_number(&view[ext_at], 124, 12)
                            ext.append((base[ext_at + 156:ext_at + 157],
                                        base[ext_at + 512:ext_at + 512 + ext_size]))
                            ext_at += 512 + padded(ext_size)
                        member = self._ts.resolve_member(
                            self._ts.parse_header(base[g.main:g.end]), ext,
                            s.offset + (g.end - g.start))
                    if member is not None:
                        member = self._normalized(member)
                        name, kind, link = member.name, member.type[0], member.linkname
                    else:
                        kind = g.type
                        name = _group_name(&g)
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
