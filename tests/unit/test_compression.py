"""Every gzip member and every zstd frame is read (0.4.17 E.2 #13 truncated them)."""
import gzip
import io
import os

import pytest

from occystrap import compression
from occystrap.errors import InputError, OptionError
from tests import imagebuilder as ib

DATA = os.urandom(100000) + b"text " * 50000


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
@pytest.mark.parametrize("multi", [False, True])
def test_all_members_and_frames(kind, multi):
    blob = ib.compress(DATA, kind, multi=multi, parts=5)
    assert compression.sniff(blob[:512]) == kind
    out = b"".join(compression.iter_uncompressed(io.BytesIO(blob), None, chunk=4096))
    assert out == DATA


def test_gzip_padding_between_members_is_skipped():
    blob = ib.compress(DATA[:1000], "gzip") + bytes(64) + ib.compress(DATA[1000:], "gzip")
    assert b"".join(compression.iter_uncompressed(io.BytesIO(blob), "gzip")) == DATA


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_truncated_stream_is_an_error(kind):
    blob = ib.compress(DATA, kind)
    with pytest.raises(InputError, match="truncated %s" % kind):
        b"".join(compression.iter_uncompressed(io.BytesIO(blob[:-20]), kind, chunk=1000))


def test_corrupt_gzip_is_an_error():
    blob = bytearray(ib.compress(DATA, "gzip"))
    blob[100:200] = bytes(100)
    with pytest.raises(InputError, match="corrupt gzip"):
        b"".join(compression.iter_uncompressed(io.BytesIO(bytes(blob)), "gzip"))


def test_unknown_data_is_refused():
    with pytest.raises(InputError, match="neither a tar archive"):
        list(compression.iter_uncompressed(io.BytesIO(b"\x01\x02" * 600), None))


@pytest.mark.parametrize("media_type, kind", [
    ("application/vnd.oci.image.layer.v1.tar+gzip", "gzip"),
    ("application/vnd.oci.image.layer.v1.tar+zstd", "zstd"),
    ("application/vnd.docker.image.rootfs.diff.tar.gzip", "gzip"),
    ("application/vnd.oci.image.layer.v1.tar", "none"),
    ("application/octet-stream", None),
])
def test_media_types(media_type, kind):
    assert compression.from_media_type(media_type) == kind


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_compressor_round_trip_and_determinism(kind):
    def run():
        codec = compression.compressor(kind)
        return b"".join(codec.compress(DATA[i:i + 70000]) for i in range(0, len(DATA), 70000)) \
            + codec.flush()
    blob = run()
    assert blob == run()
    assert b"".join(compression.iter_uncompressed(io.BytesIO(blob), kind)) == DATA


@pytest.mark.parametrize("kind, level, accepted", [
    ("gzip", 10, "0 to 9"), ("gzip", -1, "0 to 9"), ("zstd", 0, "1 to 22"),
    ("zstd", 23, "1 to 22")])
def test_compression_level_is_checked(kind, level, accepted):
    message = "for %s must be from %s, not %d" % (kind, accepted, level)
    with pytest.raises(OptionError, match=message):
        compression.compressor(kind, level)


@pytest.mark.parametrize("kind, level", [("gzip", 0), ("gzip", 3), ("gzip", 4), ("gzip", 9),
                                         ("zstd", 1), ("zstd", 22)])
def test_compression_level_bounds_work(kind, level):
    codec = compression.compressor(kind, level)
    blob = codec.compress(DATA) + codec.flush()
    assert b"".join(compression.iter_uncompressed(io.BytesIO(blob), kind)) == DATA


@pytest.mark.parametrize("level, engine", [(None, "isal"), (0, "isal"), (3, "isal"),
                                           (4, "zlib"), (9, "zlib")])
def test_gzip_engine_by_level(level, engine):
    assert compression.engine("gzip", level) == engine


@pytest.mark.parametrize("level", [4, 6, 9])
def test_zlib_levels_write_what_0417_wrote(level):
    """0.4.17 pushed gzip.GzipFile(mode="wb", compresslevel=9, mtime=0) output; levels
    4-9 give the same bytes, fed in any chunking, and 9 is smaller than ISA-L's best."""
    expected = io.BytesIO()
    with gzip.GzipFile(fileobj=expected, mode="wb", compresslevel=level, mtime=0) as out:
        out.write(DATA)
    codec = compression.compressor("gzip", level)
    blob = b"".join(codec.compress(DATA[i:i + 7000]) for i in range(0, len(DATA), 7000)) \
        + codec.flush()
    assert blob == expected.getvalue()
    if level == 9:
        isal = compression.compressor("gzip", 3)
        assert len(blob) < len(isal.compress(DATA) + isal.flush())
