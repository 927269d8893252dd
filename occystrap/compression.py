"""Layer codecs: magic sniffing and streaming (de)compression via ISA-L and zstandard.

Codecs are called, never reimplemented (design rule 8).  Decompression reads *every*
gzip member and *every* zstd frame (upstream E.2 #13 silently truncated eStargz and
zstd:chunked layers) and fails loudly on a truncated stream.
"""
import zstandard
from isal import isal_zlib

from .errors import InputError, OptionError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20


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
    """Decompress a concatenation of independent members/frames, one object at a time."""

    def __init__(self, make, name):
        self._make = make
        self._name = name
        self._obj = None
        self._done = True           # at a member boundary

    def decompress(self, data):
        out = []
        while data:
            if self._done:
                data = data.lstrip(b"\0") if self._name == "gzip" else data
                if not data:
                    break
                self._obj = self._make()
                self._done = False
            try:
                out.append(self._obj.decompress(data))
            except (isal_zlib.error, zstandard.ZstdError) as exc:
                raise InputError("corrupt %s data: %s" % (self._name, exc)) from None
            if not self._obj.eof:
                break
            data = self._obj.unused_data
            self._done = True
        return b"".join(out)

    def flush(self):
        if not self._done:
            raise InputError("truncated %s stream" % self._name)
        return b""


class _Identity:
    def decompress(self, data):
        return data

    def flush(self):
        return b""


def decompressor(kind):
    """A streaming decompressor with decompress(bytes) -> bytes and flush()."""
    if kind == "gzip":
        return _Members(lambda: isal_zlib.decompressobj(wbits=31), "gzip")
    if kind == "zstd":
        dctx = zstandard.ZstdDecompressor()
        return _Members(dctx.decompressobj, "zstd")
    if kind == "none":
        return _Identity()
    raise InputError("unsupported layer compression: %s" % kind)


def iter_uncompressed(fileobj, kind=None, chunk=CHUNK):
    """Yield the uncompressed bytes of a blob read from fileobj, sniffing when kind is None."""
    first = fileobj.read(chunk)
    if kind is None:
        kind = sniff(first)
        if kind == "unknown":
            raise InputError("layer is neither a tar archive nor gzip/zstd compressed")
    dec = decompressor(kind)
    data = first
    while data:
        out = dec.decompress(data)
        if out:
            yield out
        data = fileobj.read(chunk)
    dec.flush()


# Defaults chosen for speed: ISA-L's level 1 is faster than zlib's 1 and still compresses
# well; zstd 3 is zstd's own default.
DEFAULT_LEVELS = {"gzip": 1, "zstd": 3}
# The levels each engine takes: ISA-L has 0-3; zstd's negative "fast" levels are left
# out, as the zstd CLI needs --fast for them.
LEVELS = {"gzip": (0, 3), "zstd": (1, 22)}


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


class _Gzip:
    def __init__(self, level):
        self._obj = isal_zlib.compressobj(level, isal_zlib.DEFLATED, 31)

    def compress(self, data):
        return self._obj.compress(data)

    def flush(self):
        return self._obj.flush()


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
        return _Gzip(check_level(kind, level))
    if kind == "zstd":
        return _Zstd(check_level(kind, level))
    raise InputError("unsupported compression: %s" % kind)
