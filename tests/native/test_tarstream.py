"""Header parsing/formatting of both twins, with CPython tarfile as the oracle."""
import io
import tarfile

import pytest

from occystrap._native._common import TarError

pytestmark = pytest.mark.native


def _one_header(info, fmt):
    return info.tobuf(fmt, "utf-8", "surrogateescape")


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT])
def test_parse_header_matches_tarfile(impl, fmt):
    info = tarfile.TarInfo("usr/share/doc/" + "d" * 80 + "/README")
    info.size, info.mtime, info.mode = 1234, 1700000000, 0o4755
    info.uid, info.gid, info.uname, info.gname = 1000, 100, "alice", "users"
    block = _one_header(info, fmt)[-512:]
    header = impl.tarstream.parse_header(block)
    oracle = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    assert header.name.decode() == oracle.name
    assert (header.size, header.mtime, header.mode) == (oracle.size, oracle.mtime, oracle.mode)
    assert (header.uid, header.gid) == (oracle.uid, oracle.gid)
    assert (header.uname, header.gname) == (b"alice", b"users")
    assert header.gnu == (fmt == tarfile.GNU_FORMAT)


def test_zero_block_is_end(impl):
    assert impl.tarstream.parse_header(bytes(512)) is None


def test_bad_checksum(impl):
    block = bytearray(tarfile.TarInfo("x").tobuf(tarfile.USTAR_FORMAT))
    block[0] = ord("y")
    with pytest.raises(TarError, match="checksum"):
        impl.tarstream.parse_header(bytes(block))


def test_base256_numbers(impl):
    assert impl.tarstream.parse_number(b"\x80" + bytes(10) + b"\x05") == 5
    assert impl.tarstream.parse_number(b"\xff" * 12) == -1
    assert impl.tarstream.parse_number(b"0000644\0") == 0o644
    assert impl.tarstream.parse_number(b"   12 \0  ") == 0o12


@pytest.mark.parametrize("name", ["short", "a/" * 60 + "leaf", "x" * 130, "dir/" + "n" * 99])
def test_format_header_roundtrips_through_tarfile(impl, name):
    data = impl.tarstream.format_header(name.encode(), 0o644, 1, 2, 3, 1700000000, b"0",
                                        linkname=b"", uname=b"u", gname=b"g")
    archive = data + b"abc" + bytes(509) + bytes(1024)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.next()
        assert member.name == name
        assert (member.size, member.mtime, member.uid, member.gid) == (3, 1700000000, 1, 2)
        assert tar.extractfile(member).read() == b"abc"


def test_format_is_identical_across_twins(twins):
    outputs = {t.tarstream.format_header(b"p" * 200, 0o755, 0, 0, 8 ** 11 + 1, 0, b"0")
               for t in twins}
    assert len(outputs) == 1


def test_pax_roundtrip(impl):
    records = [(b"path", b"\xc3\xbc" * 50), (b"SCHILY.xattr.security.capability", b"\x01\x00")]
    data = impl.tarstream.format_pax(records)
    assert impl.tarstream.parse_pax(data) == records
    with pytest.raises(TarError):
        impl.tarstream.parse_pax(b"99 path=x\n")
