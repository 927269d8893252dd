"""Layer codecs: magic sniffing and streaming (de)compression via ISA-L and zstandard.

Codecs are called, never reimplemented (design rule 8).  Decompression reads *every*
gzip member and *every* zstd frame (upstream E.2 #13 silently truncated eStargz and
zstd:chunked layers) and fails loudly on a truncated stream.
"""
import struct
import zlib

import zstandard
from isal import isal_zlib

from .errors import InputError, OptionError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20
ZSTD_SLICE = 1024       # at most 32 MiB of zstd output per decompress() call


def sniff(head):
    """Compression of a blob from its first bytes: gzip, zstd, none (tar) or unknown."""
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if head[:4] == ZSTD_MAGIC:
        return "zstd"
    if head[257:262] == b"ustar" or len(head) == 0 or head[:512].count(0) == min(len(head), 512):
        return "none"
    return "unknown"


def from_media_type(media_type):
    """Compression named by a layer media type (B.15), or None when it says nothing."""
    if not media_type:
        return None
    if media_type.endswith(("+gzip", ".gzip")):
        return "gzip"
    if media_type.endswith(("+zstd", ".zstd")):
        return "zstd"
    if media_type.endswith(".tar") or media_type.endswith("layer.v1.tar"):
        return "none"
    return None


class _Members:
    """Decompress a concatenation of independent members/frames, one object at a time.

    Output comes in bounded pieces, so a hostile layer (deflate expands up to ~1000x,
    zstd RLE blocks up to 32768x) cannot balloon memory before the tar parser refuses
    it: gzip asks ISA-L for at most CHUNK bytes per call (max_length); zstandard's
    decompressobj has no such limit, so it is fed ZSTD_SLICE bytes at a time.
    """

    def __init__(self, make, name):
        self._make = make
        self._name = name
        self._obj = None
        self._done = True           # at a member boundary

    def pieces(self, data):
        """Yield the decompressed bytes `data` completes, in pieces of bounded size."""
        if self._name == "zstd":
            for start in range(0, len(data), ZSTD_SLICE):
                yield from self._members(data[start:start + ZSTD_SLICE])
        else:
            yield from self._members(data)

    def _members(self, data):
        while data or not self._done:
            if self._done:
                data = data.lstrip(b"\0") if self._name == "gzip" else data
                if not data:
                    return
                self._obj = self._make()
                self._done = False
            try:
                if self._name == "gzip":
                    out = self._obj.decompress(data, CHUNK)
                    data = self._obj.unconsumed_tail
                else:
                    out, data = self._obj.decompress(data), b""
            except (isal_zlib.error, zstandard.ZstdError) as exc:
                raise InputError("corrupt %s data: %s" % (self._name, exc)) from None
            if out:
                yield out
            if self._obj.eof:
                data = self._obj.unused_data
                self._done = True
            elif not data and len(out) < CHUNK:
                return          # all input taken and no output pending: needs more input

    def flush(self):
        if not self._done:
            raise InputError("truncated %s stream" % self._name)
        return b""


class _Identity:
    def pieces(self, data):
        yield data

    def flush(self):
        return b""


def decompressor(kind):
    """A streaming decompressor with pieces(bytes) -> iterator of bytes, and flush()."""
    if kind == "gzip":
        return _Members(lambda: isal_zlib.decompressobj(wbits=31), "gzip")
    if kind == "zstd":
        dctx = zstandard.ZstdDecompressor()
        return _Members(dctx.decompressobj, "zstd")
    if kind == "none":
        return _Identity()
    raise InputError("unsupported layer compression: %s" % kind)


def iter_uncompressed(fileobj, kind=None, chunk=CHUNK, unknown="error"):
    """Yield the uncompressed bytes of a blob read from fileobj, sniffing when kind is
    None; a blob of no known kind is an InputError, or (unknown="none", for check)
    passed on as stored for the tar parser to judge."""
    first = fileobj.read(chunk)
    if kind is None:
        kind = sniff(first)
        if kind == "unknown":
            if unknown != "none":
                raise InputError("layer is neither a tar archive nor gzip/zstd compressed")
            kind = "none"
    dec = decompressor(kind)
    data = first
    while data:
        yield from dec.pieces(data)
        data = fileobj.read(chunk)
    dec.flush()


# Defaults chosen for speed: ISA-L's level 1 is faster than zlib's 1 and still compresses
# well; zstd 3 is zstd's own default.
DEFAULT_LEVELS = {"gzip": 1, "zstd": 3}
# The levels each kind takes.  gzip 0-3 are ISA-L's; 4-9 go to zlib, whose 9 is what
# 0.4.17 wrote (smaller, slower).  zstd's negative "fast" levels are left out, as the
# zstd CLI needs --fast for them.
LEVELS = {"gzip": (0, 9), "zstd": (1, 22)}
ISAL_MAX_LEVEL = 3


def check_level(kind, level):
    """level for compression kind, or the default when None.

    :raises OptionError: a level the engine does not take (zstd clamps silently, ISA-L
        fails later with a bare "Invalid compression level" inside a worker).
    """
    if level is None:
        return DEFAULT_LEVELS[kind]
    low, high = LEVELS[kind]
    if not low <= level <= high:
        raise OptionError("compression level (--compression-level, ?compression_level) for "
                          "%s must be from %d to %d, not %d" % (kind, low, high, level))
    return level


def engine(kind, level=None):
    """The library that makes `kind` at `level`: part of a blob's identity, since ISA-L
    and zlib write different bytes for the same input (cache keys include it)."""
    level = check_level(kind, level)
    if kind == "gzip":
        return "isal" if level <= ISAL_MAX_LEVEL else "zlib"
    return "zstandard"


class _Isal:
    def __init__(self, level):
        self._obj = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)

    def compress(self, data):
        return self._obj.compress(data)

    def flush(self):
        return self._obj.flush()


class _Zlib:
    """gzip as 0.4.17 wrote it (gzip.GzipFile with mtime 0, no file name), byte for
    byte: GzipFile's header (XFL from the level, OS 255), raw deflate, CRC32 + size."""

    def __init__(self, level):
        self._obj = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS,
                                     zlib.DEF_MEM_LEVEL, 0)
        xfl = {1: 4, 9: 2}.get(level, 0)
        self._header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00" + bytes([xfl, 255])
        self._crc = 0
        self._size = 0

    def compress(self, data):
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        out = self._header + self._obj.compress(data)
        self._header = b""
        return out

    def flush(self):
        return (self._header + self._obj.flush()
                + struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))


class _Zstd:
    def __init__(self, level):
        self._obj = zstandard.ZstdCompressor(level=level).compressobj()

    def compress(self, data):
        return self._obj.compress(data)

    def flush(self):
        return self._obj.flush()


def compressor(kind, level=None):
    """A streaming compressor with compress(bytes) -> bytes and flush() -> bytes.

    The engine and level are part of the output's identity (ISA-L bytes differ from
    zlib's), so callers that cache by content must key on (kind, level) too.
    """
    if kind == "gzip":
        level = check_level(kind, level)
        return _Isal(level) if engine(kind, level) == "isal" else _Zlib(level)
    if kind == "zstd":
        return _Zstd(check_level(kind, level))
    raise InputError("unsupported compression: %s" % kind)
