"""Streaming tar rewriter (pure-Python twin of rewrite.pyx).

Fed an uncompressed layer in arbitrary chunks, it yields the rewritten layer: mtimes
set (normalize-timestamps), members dropped (exclude), everything else byte-for-byte
as it came in (so xattrs, GNU/PAX long names, devices and sparse files survive, the
regression of upstream issue #151 cannot happen).  It can also just observe a layer
and collect its members (search, inspect, check, expand).  Memory is bounded by the
largest extended header, never by the layer size.
"""
from ._common import (BLOCK, DIRTYPE, GNU_SPARSE, LNKTYPE,
                      RECORD, TarError, XGLTYPE)
from . import tarstream_py
from .globset_py import is_whiteout, normalize_name

__all__ = ["TarRewriter"]

_HEADER, _EXTDATA, _SPARSE, _DATA, _END = range(5)


class TarRewriter:
    """Rewrite or observe one tar stream.

    :param mtime: set every member's mtime to this (None: leave times alone).
    :param clamp: only set the mtimes later than `mtime` (normalize-timestamps
        mode=clamp); PAX time records are then dropped only when later (tarstream's
        normalize_header and drops_time_record).
    :param exclude: a GlobSet; matching members (and whole matching directories) are
        dropped.  Whiteouts are never dropped: that would resurrect deleted files.
    :param rewrite: False to only parse (feed() then returns nothing).
    :param collect: keep a Member for every member seen (emitted ones when rewriting).
    """

    _ts = tarstream_py          # header codec; the Cython subclass swaps in its own

    def __init__(self, mtime=None, exclude=None, rewrite=True, collect=False, clamp=False):
        self._mtime = None if mtime is None else self._ts.format_number(int(mtime), 12)
        self._time = 0 if mtime is None else int(mtime)
        self._clamp = bool(clamp)
        self._exclude = exclude
        self._rewrite = rewrite
        self._collect = collect
        self.members = []
        self.dropped = 0
        self.count = 0
        self._buf = bytearray()
        self._need = BLOCK
        self._state = _HEADER
        self._remaining = 0
        self._emit = True
        self._offset = 0                    # input offset of the first byte of _buf
        self._out = 0                       # bytes emitted so far
        self._ext = []                      # pending (type, header block, data, padded data)
        self._ext_bytes = 0                 # their data sizes, capped (extension_bytes)
        self._globals = []                  # records of global PAX headers seen so far
        self._ext_header = None
        self._sparse_blocks = []
        self._pending = None                # header parsed, waiting for sparse blocks
        self._excluded_dirs = set()
        self._dropped_files = set()

    # -- public API -------------------------------------------------------------------
    def feed(self, data):
        """Consume a chunk; return the rewritten bytes it completes (a bytearray)."""
        out = bytearray()
        view = memoryview(data).cast("B")
        pos = 0
        end = len(view)
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                if self._emit and self._rewrite:
                    out += view[pos:pos + take]
                pos += take
                self._offset += take
                self._remaining -= take
                if not self._remaining:
                    self._state = _HEADER
                    self._need = BLOCK
                continue
            if state == _END:
                self._offset += end - pos
                break
            take = min(self._need - len(self._buf), end - pos)
            self._buf += view[pos:pos + take]
            pos += take
            if len(self._buf) < self._need:
                break
            self._step(out)
        self._out += len(out)
        return out

    def close(self):
        """Finish the stream: check it is complete and return the end-of-archive blocks."""
        if self._state not in (_HEADER, _END) or self._buf or self._ext:
            raise TarError("truncated tar stream at offset %d" % self._offset)
        if not self._offset:
            raise TarError("empty tar stream")        # not even an end-of-archive block
        self._state = _END
        if not self._rewrite:
            return bytearray()
        size = self._out + 2 * BLOCK
        size = (size + RECORD - 1) // RECORD * RECORD
        return bytearray(size - self._out)

    # -- state machine ----------------------------------------------------------------
    def _consume(self):
        block = bytes(self._buf)
        self._offset += len(block)
        self._buf = bytearray()
        return block

    def _step(self, out):
        if self._state == _HEADER:
            self._header(out)
        elif self._state == _EXTDATA:
            self._extdata(out)
        else:
            self._sparse(out)

    def _header(self, out):
        offset = self._offset
        block = self._consume()
        try:
            header = self._ts.parse_header(block)
        except TarError as exc:
            raise TarError("%s at offset %d" % (exc, offset)) from None
        if header is None:
            if self._ext:
                raise TarError("extended header without a member at offset %d" % offset)
            self._state = _END
            return
        if self._ts.is_extension(header.type[0]):
            self._ext_bytes = self._ts.extension_bytes(header.type, header.size,
                                                       self._ext_bytes, offset)
            self._ext_header = (header.type, block, header.size)
            self._state = _EXTDATA
            self._need = self._ts.padded(header.size)
            if not self._need:
                self._extdata(out)
            return
        self._pending = (header, block)
        self._sparse_blocks = []
        if header.type == GNU_SPARSE:
            self._ts.check_sparse(block, offset, False)
        if header.type == GNU_SPARSE and block[482]:
            self._state = _SPARSE
            self._need = BLOCK
            return
        self._member(out)

    def _extdata(self, out):
        kind, block, size = self._ext_header
        offset = self._offset
        raw = self._consume()
        data = raw[:size]
        self._ext_header = None
        self._state = _HEADER
        self._need = BLOCK
        if kind == XGLTYPE:
            # A global header applies to every later member (POSIX, tarfile) and is never
            # dropped with one; its timestamp records go under normalize-timestamps too.
            self._globals += self._ts.global_records(data, offset)
            if self._rewrite:
                self._emit_ext(out, kind, block, data, raw)
            return
        self._ext.append((kind, block, data, raw))

    def _sparse(self, out):
        offset = self._offset
        block = self._consume()
        self._ts.check_sparse(block, offset, True)
        self._sparse_blocks.append(block)
        if block[504]:
            self._ts.check_sparse_blocks(len(self._sparse_blocks), self._offset)
            self._need = BLOCK
            return
        self._member(out)

    def _member(self, out):
        header, block = self._pending
        self._pending = None
        member = self._ts.resolve_member(header, [(k, d) for k, _b, d, _r in self._ext],
                                          self._offset, self._globals)
        member = self._normalized(member)
        keep = self._keep(member.name, member.type, member.linkname)
        self.count += 1
        if keep and self._collect:
            self.members.append(member)
        if not keep:
            self.dropped += 1
        elif self._rewrite:
            force = False
            for ext_kind, ext_block, ext_data, ext_raw in self._ext:
                force |= self._emit_ext(out, ext_kind, ext_block, ext_data, ext_raw)
            out += self._patch(block, force)
            for sparse in self._sparse_blocks:
                out += sparse
        self._ext = []
        self._ext_bytes = 0
        self._sparse_blocks = []
        self._emit = keep
        has_data = self._ts.has_data(member.type[0])
        self._remaining = self._ts.padded(member.size) if has_data else 0
        if self._remaining:
            self._state = _DATA
        else:
            self._state = _HEADER
            self._need = BLOCK

    def _keep(self, name, kind, linkname):
        if self._exclude is None:
            return True
        match_name = normalize_name(name)
        if is_whiteout(match_name, 0, len(match_name)):
            return True
        drop = False
        if self._excluded_dirs:
            pos = match_name.find(b"/")
            while pos > 0:
                if match_name[:pos] in self._excluded_dirs:
                    drop = True
                    break
                pos = match_name.find(b"/", pos + 1)
        if not drop and kind == LNKTYPE and normalize_name(linkname) in self._dropped_files:
            drop = True       # a hard link to a dropped file would break the layer
        if not drop and self._exclude.match(match_name):
            drop = True
        if drop:
            if kind == DIRTYPE:
                self._excluded_dirs.add(match_name)
            else:
                self._dropped_files.add(match_name)
        return not drop

    def _normalized(self, member):
        """The member as the output describes it: its mtime set, or clamped, to ts.
        (A hand-made tar whose header mtime is older than ts but its dropped PAX mtime
        later reads back with the header's; writers keep the two within a second.)"""
        if self._mtime is None or (self._clamp and member.mtime <= self._time):
            return member
        return member._replace(mtime=self._time)

    def _patch(self, block, force=False):
        if self._mtime is None:
            return block
        block = bytearray(block)
        self._ts.patch_block_mtime(block, self._mtime, self._time, self._clamp, force)
        return block

    def _emit_ext(self, out, kind, block, data, raw):
        """An extended header as it came (its padding too), unless normalize-timestamps
        drops its time records: then re-encoded, or left out when nothing remains.
        Returns whether it dropped an mtime record (the member header then gets ts)."""
        dropped = False
        if self._mtime is not None and self._ts.has_pax_records(kind[0]):
            dropped = self._clamp and self._ts.drops_mtime(data, self._time, True)
            data = self._ts.drop_time_records(data, self._time, self._clamp)
            if not data:
                return dropped
            block = bytearray(block)
            block[124:136] = self._ts.format_number(len(data), 12)
            self._ts.set_checksum(block)        # clamp may not patch it
            raw = data + bytes(self._ts.padded(len(data)) - len(data))
        out += self._patch(block)
        out += raw
        return dropped
