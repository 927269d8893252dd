"""The uncompressed size of a stored layer blob, read from its framing, never by inflating.

A byte-exact copy must not decompress (its CPU stays far below a filtered copy's), yet
its Summary reports the uncompressed size like every other copy.  The formats record
it, or enough of it:

- gzip: a member ends with ISIZE, its uncompressed size mod 2**32 (RFC 1952).  Layers
  from docker, buildkit, containerd and occystrap are one member, so the last 4 bytes
  give the size, exactly below 4 GiB (the wrap is resolved by a lower bound, below).
- zstd: a frame header may carry Frame_Content_Size (RFC 8878 3.1.1.1); frames are
  walked by their 3-byte block headers as the bytes pass, without decoding.  The sum
  is exact when every frame has it; one frame without it makes the size unknown.
- an uncompressed tar: the blob's own size.

Unknown (None) means the caller reports the compressed size instead.
"""
from .compression import GZIP_MAGIC, ZSTD_MAGIC, from_media_type, sniff

TAIL = 64                   # bytes of a blob's end kept as it streams, or fetched
WRAP = 1 << 32              # ISIZE is the size modulo this
EMPTY_MEMBER = 64           # longer than any gzip member of nothing with a plain header
# Optional gzip header fields (FEXTRA up to 64 KiB, a name, a comment) shorten the
# deflate data inside a blob of a given size; this much is set aside for them.
HEADER_ALLOWANCE = 1 << 20
MAX_RATIO = 1032            # deflate's best: a 258-byte match in about 2 bits


def deflate_floor(blob_size):
    """A lower bound of the uncompressed size of a single gzip member of blob_size bytes.

    Deflate can store data raw (stored blocks: 5 bytes of header per up to 65535 bytes),
    so a zlib-like encoder, which falls back to stored blocks, never grows data by more
    than ~0.01%.  An encoder that never does (fixed Huffman codes only) still spends at
    most 9 bits on a literal byte; with block headers that is under 10 bits a byte.  So
    the deflate data is at most 5/4 of what it inflates to, and the uncompressed size is
    at least 4/5 of the deflate data: blob_size less the 8-byte trailer and the header
    allowance.  The bound only decides between sizes 4 GiB apart; a weak one merely
    leaves a layer past 4 GiB that compresses well reported 4 GiB (or a multiple) short.
    """
    return max(0, (blob_size - 8 - HEADER_ALLOWANCE) * 4 // 5)


def gzip_size(tail, blob_size):
    """The uncompressed size of a one-member gzip blob from its last bytes, or None.

    ISIZE only says the size mod 2**32: the size is the smallest value of that residue
    at or above deflate_floor() (never more than the true size).  A 0 on a blob longer
    than an empty member means trailing padding or an empty last member (eStargz ends
    with one): several members, whose sizes the last one does not tell.
    """
    if len(tail) < 8 or blob_size < 18:
        return None
    isize = int.from_bytes(tail[-4:], "little")
    if isize == 0 and blob_size > EMPTY_MEMBER:
        return None
    floor = deflate_floor(blob_size)
    size = isize + -(-max(0, floor - isize) // WRAP) * WRAP
    if size > blob_size * MAX_RATIO:    # more than deflate can make: not a gzip trailer
        return None
    return size


class ZstdFrames:
    """Walks zstd frames as their bytes pass, summing Frame_Content_Size; total() is
    None unless every frame had one and the stream ended at a frame boundary.  Only
    headers are parsed: blocks are skipped by their sizes."""

    def __init__(self):
        self._sum = 0
        self._known = True
        self._skip = 0
        self._buf = b""
        self._need, self._state = 4, self._magic
        self._checksum = False
        self._fcs_len = 0

    def feed(self, data):
        pos, end = 0, len(data)
        while pos < end and self._known:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            if not self._buf and pos + self._need <= end:      # a whole header: no copy
                pos += self._need
                self._state(data[pos - self._need:pos])
                continue
            take = min(self._need - len(self._buf), end - pos)
            self._buf += data[pos:pos + take]
            pos += take
            if len(self._buf) == self._need:
                buf, self._buf = self._buf, b""
                self._state(buf)

    def total(self):
        at_boundary = self._state == self._magic and not self._buf and not self._skip
        return self._sum if self._known and at_boundary else None

    def _expect(self, need, state, skip=0):
        self._need, self._state, self._skip = need, state, skip

    def _magic(self, buf):
        if buf == ZSTD_MAGIC:
            self._expect(1, self._descriptor)
        elif int.from_bytes(buf, "little") & 0xFFFFFFF0 == 0x184D2A50:
            self._expect(4, self._skippable)
        else:
            self._known = False

    def _skippable(self, buf):
        self._expect(4, self._magic, skip=int.from_bytes(buf, "little"))

    def _descriptor(self, buf):
        flags = buf[0]
        single = flags >> 5 & 1
        self._fcs_len = (single, 2, 4, 8)[flags >> 6]
        self._checksum = bool(flags >> 2 & 1)
        if not self._fcs_len or flags & 0x08:   # no content size, or a reserved bit
            self._known = False
            return
        self._expect((1 - single) + (0, 1, 2, 4)[flags & 3] + self._fcs_len, self._header)

    def _header(self, buf):
        size = int.from_bytes(buf[-self._fcs_len:], "little")
        self._sum += size + (256 if self._fcs_len == 2 else 0)
        self._expect(3, self._block)

    def _block(self, buf):
        value = int.from_bytes(buf, "little")
        kind, size = value >> 1 & 3, value >> 3
        if kind == 3:
            self._known = False
            return
        skip = 1 if kind == 1 else size         # an RLE block stores one byte
        if value & 1:                           # the frame's last block
            self._expect(4, self._magic, skip=skip + (4 if self._checksum else 0))
        else:
            self._expect(3, self._block, skip=skip)


def kind_of(media_type, head=b""):
    """gzip, zstd or none, from the media type or else the first bytes; None if unknown
    or a gzip media type on bytes that are not (a zstd stream's ZstdFrames checks it)."""
    kind = from_media_type(media_type)
    if kind is None and head:
        kind = sniff(head)
    if kind == "gzip" and head and head[:2] != GZIP_MAGIC:
        return None
    return kind if kind in ("gzip", "zstd", "none") else None


def stored_size(kind, blob_size, tail, zstd_total=None):
    """The uncompressed size of a blob of `kind` (kind_of), or None when unknown: its
    own size for a tar, ISIZE for gzip, the frames' sum (ZstdFrames.total) for zstd."""
    if kind == "none":
        return blob_size
    if kind == "gzip":
        return gzip_size(tail, blob_size)
    if kind == "zstd":
        return zstd_total
    return None


def reused_size(media_type, blob_size, read_tail):
    """The uncompressed size of a blob the destination already has, from its last TAIL
    bytes (read_tail(count): bytes, or None when the source cannot say cheaply).  A
    zstd blob is not read through, so its frames cannot be walked: None."""
    kind = kind_of(media_type)
    if kind == "none":
        return blob_size
    if kind != "gzip" or not blob_size or read_tail is None:
        return None
    tail = read_tail(min(TAIL, blob_size))
    return gzip_size(tail, blob_size) if tail else None


class SizeWatch:
    """A reader that passes a blob through unchanged, keeping what stored_size needs:
    the first and last bytes, the zstd frames.  size() is None unless the whole blob
    (blob_size bytes) went through."""

    def __init__(self, fileobj, media_type, blob_size):
        self._fileobj = fileobj
        self._media_type = media_type
        self._blob_size = blob_size
        self._seen = 0
        self._tail = b""
        self._kind = False          # not decided until the first bytes arrive
        self._frames = None

    def read(self, size=-1):
        data = self._fileobj.read(size)
        if data:
            self._watch(data)
        return data

    def _watch(self, data):
        if self._kind is False:
            self._kind = kind_of(self._media_type, data[:512])
            self._frames = ZstdFrames() if self._kind == "zstd" else None
        if self._frames is not None:
            self._frames.feed(data)
        self._seen += len(data)
        self._tail = data[-TAIL:] if len(data) >= TAIL else (self._tail + data)[-TAIL:]

    def size(self):
        if self._seen != self._blob_size or self._kind is False:
            return None
        total = self._frames.total() if self._frames is not None else None
        return stored_size(self._kind, self._blob_size, self._tail, total)
