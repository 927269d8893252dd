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


def _outcome(function, *args, **kwargs):
    """What a call gives: its result, or its exception class and message."""
    try:
        result = function(*args, **kwargs)
    except Exception as exc:                      # noqa: BLE001 - compared, not hidden
        return ("raises", type(exc).__name__, str(exc))
    return ("returns", bytes(result) if isinstance(result, bytearray) else result)


_BLOCK = tarfile.TarInfo("a").tobuf(tarfile.USTAR_FORMAT)
_old = tarfile.TarInfo("old")
_old.mtime = -1                                  # GNU base-256, 12-byte field
_NEGATIVE_MTIME = _old.tobuf(tarfile.GNU_FORMAT)
_FORMAT_CALLS = [
    ("format_header", (b"p" * 200, 0o755, 0, 0, 8 ** 11 + 1, 0, b"0"), {}),
    ("format_header", (b"short", 0o644, 1, 2, 3, 1700000000, b"0"),
     dict(uname=b"u" * 40, gname=b"g", linkname=b"l" * 150)),
    ("format_header", (b"d/" * 80 + b"leaf", 0o4755, 2 ** 30, 0, 0, -1, b"5"), {}),
    ("format_header", (b"dev", 0o600, 0, 0, 0, 0, b"3"), dict(devmajor=8, devminor=2 ** 22)),
    ("format_number", (0, 8), {}), ("format_number", (8 ** 7, 8), {}),
    ("format_number", (-1, 12), {}), ("format_number", (2 ** 95, 12), {}),
    ("format_number", (2 ** 100, 12), {}),
    ("format_pax", ([(b"path", b"x" * 95), (b"k", b"")],), {}),
    ("parse_number", (b"0000644\0",), {}), ("parse_number", (b"\xff" * 8,), {}),
    ("parse_number", (b"\x80" + bytes(10) + b"\x05",), {}), ("parse_number", (b"9",), {}),
    ("parse_header", (_BLOCK,), {}), ("parse_header", (bytes(512),), {}),
    ("parse_header", (_BLOCK[:100],), {}), ("parse_header", (b"x" + _BLOCK[1:],), {}),
    ("parse_pax", (b"11 path=ab\n6 k=v\n\0\0",), {}), ("parse_pax", (b"3 x\n",), {}),
    ("parse_header", (_NEGATIVE_MTIME,), {}),
    ("checksum", (_BLOCK,), {}), ("padded", (513,), {}),
    ("filter_pax", (b"11 mtime=1\n7 a=bc\n", {b"mtime"}), {}),
]


@pytest.mark.parametrize("name, args, kwargs", _FORMAT_CALLS,
                         ids=["%s-%d" % (c[0], i) for i, c in enumerate(_FORMAT_CALLS)])
def test_format_is_identical_across_twins(twins, name, args, kwargs):
    """Both twins give the same bytes (or the same error) on real inputs, and when the
    compiled twin exists this compares two implementations, not one function with
    itself (a Cython module that re-exports the pure function proves nothing)."""
    functions = [getattr(t.tarstream, name) for t in twins]
    if len(twins) > 1:
        assert functions[0] is not functions[1], (
            "%s of the %s twin is the %s twin's function" % (name, twins[0].name,
                                                            twins[1].name))
        assert {f.__module__ for f in functions} == {
            t.tarstream.__name__ for t in twins}, [f.__module__ for f in functions]
    outcomes = [_outcome(f, *args, **kwargs) for f in functions]
    assert all(o == outcomes[0] for o in outcomes), outcomes
    if name.startswith("format_header") and outcomes[0][0] == "returns":
        with tarfile.open(fileobj=io.BytesIO(outcomes[0][1] + bytes(1024))) as tar:
            assert tar.next() is not None


def test_set_checksum_is_identical_across_twins(twins):
    blocks = []
    for twin in twins:
        block = bytearray(_BLOCK)
        block[0:1] = b"z"
        twin.tarstream.set_checksum(block)
        blocks.append(bytes(block))
    assert len(set(blocks)) == 1
    assert tarfile.TarInfo.frombuf(blocks[0], "utf-8", "surrogateescape").name == "z"


def test_pax_roundtrip(impl):
    records = [(b"path", b"\xc3\xbc" * 50), (b"SCHILY.xattr.security.capability", b"\x01\x00")]
    data = impl.tarstream.format_pax(records)
    assert impl.tarstream.parse_pax(data) == records
    with pytest.raises(TarError):
        impl.tarstream.parse_pax(b"99 path=x\n")
