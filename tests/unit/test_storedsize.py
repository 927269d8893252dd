"""The Summary's SIZE of a blob copied as stored: read from gzip's ISIZE and zstd's
Frame_Content_Size, never by inflating (occystrap/storedsize.py)."""
import io
import os
import struct

import pytest
import zstandard

from occystrap import compression, storedsize
from occystrap.fileslice import read_tail
from tests import imagebuilder as ib

DATA = os.urandom(100000) + b"text " * 50000
GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
TAR = "application/vnd.oci.image.layer.v1.tar"
GIB = 1 << 30


def watched(blob, media_type, chunk=65536):
    """SizeWatch's size() after reading all of blob through it in chunk-byte reads."""
    watch = storedsize.SizeWatch(io.BytesIO(blob), media_type, len(blob))
    while watch.read(chunk):
        pass
    return watch.size()


def made_by(kind, level, data=DATA):
    comp = compression.compressor(kind, level)
    return comp.compress(data) + comp.flush()


@pytest.mark.parametrize("level", [1, 9])           # ISA-L and zlib, as occystrap writes
@pytest.mark.parametrize("media_type", [GZIP, None])
def test_gzip_single_member_is_exact(level, media_type):
    blob = made_by("gzip", level)
    assert watched(blob, media_type) == len(DATA)
    assert storedsize.reused_size(GZIP, len(blob), lambda n: blob[-n:]) == len(DATA)


def trailer(size):
    """The last bytes of a gzip member of `size` uncompressed bytes (CRC left 0)."""
    return bytes(56) + struct.pack("<II", 0, size % (1 << 32))


@pytest.mark.parametrize("true, blob_size", [
    (5 * GIB + 123, 5 * GIB + 5 * GIB // 65535 * 5),     # incompressible: stored blocks
    (9 * GIB + 7, 9 * GIB + 9 * GIB // 8),             # fixed Huffman at 9 bits a byte
    (4 * GIB - 512, 4 * GIB),                          # below the wrap, near it
    (4 * GIB, 4 * GIB + 4 * GIB // 65535 * 5),         # a multiple of 2**32 that hardly packs
])
def test_isize_wrap_is_resolved_by_the_lower_bound(true, blob_size):
    size = storedsize.gzip_size(trailer(true), blob_size)
    assert size == (true if true % (1 << 32) else None)


def test_a_well_compressed_layer_past_4_gib_is_short_by_the_wrap_never_over():
    true, blob_size = 6 * GIB, GIB
    assert storedsize.gzip_size(trailer(true), blob_size) == true - 4 * GIB


def test_small_blobs_are_exact_whatever_their_header():
    # a 64 KiB FEXTRA field around 10 bytes of content: the allowance keeps the bound low
    assert storedsize.gzip_size(trailer(10), 70000) == 10


def test_a_size_deflate_cannot_reach_is_not_a_trailer():
    assert storedsize.gzip_size(trailer(1000 * 1032), 1000) == 1000 * 1032
    assert storedsize.gzip_size(trailer(1000 * 1032 + 1), 1000) is None


def test_empty_gzip_member_is_zero_but_a_trailing_empty_member_is_unknown():
    empty = made_by("gzip", 1, b"")
    assert watched(empty, GZIP) == 0
    estargz_like = made_by("gzip", 1) + empty    # eStargz ends with an empty member
    assert watched(estargz_like, GZIP) is None
    padded = made_by("gzip", 1) + bytes(64)
    assert watched(padded, GZIP) is None


def test_gzip_media_type_on_other_bytes_is_unknown():
    assert watched(ib.compress(DATA, "zstd"), GZIP) is None


@pytest.mark.parametrize("chunk", [1, 7, 65536])
def test_zstd_with_content_size_is_exact(chunk):
    blob = zstandard.ZstdCompressor(write_checksum=True).compress(DATA[:20000])
    assert watched(blob, ZSTD, chunk) == 20000


def test_zstd_frames_and_skippable_frames_are_summed():
    blob = ib.compress(DATA, "zstd", multi=True, parts=5)
    skippable = struct.pack("<II", 0x184D2A5E, 5) + b"12345"
    assert watched(skippable + blob + skippable, ZSTD) == len(DATA)
    assert watched(blob, None) == len(DATA)             # sniffed


def test_zstd_without_content_size_is_unknown():
    assert watched(made_by("zstd", 3), ZSTD) is None             # occystrap's own writer
    mixed = ib.compress(DATA[:1000], "zstd") + made_by("zstd", 3)
    assert watched(mixed, ZSTD) is None


def test_zstd_truncated_or_not_zstd_is_unknown():
    blob = ib.compress(DATA, "zstd")
    assert watched(blob[:-3], ZSTD) is None
    assert watched(blob + b"junk", ZSTD) is None


def test_zstd_reused_is_unknown():
    blob = ib.compress(DATA, "zstd")
    assert storedsize.reused_size(ZSTD, len(blob), lambda n: blob[-n:]) is None


@pytest.mark.parametrize("media_type", [TAR, None])
def test_tar_is_its_own_size(media_type):
    tar = ib.layer([("file", "a.txt", b"hello")])
    assert watched(tar, media_type) == len(tar)
    assert storedsize.reused_size(TAR, len(tar), None) == len(tar)


def test_unknown_and_partly_read_blobs_are_unknown():
    assert watched(os.urandom(5000), None) is None
    blob = made_by("gzip", 1)
    watch = storedsize.SizeWatch(io.BytesIO(blob), GZIP, len(blob))
    watch.read(100)
    assert watch.size() is None
    assert storedsize.reused_size(GZIP, len(blob), lambda n: None) is None


def test_read_tail_refuses_a_file_of_another_size(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"0123456789")
    with open(path, "rb") as fileobj:
        assert read_tail(fileobj, 10, 4) == b"6789"
        assert read_tail(fileobj, 11, 4) is None
