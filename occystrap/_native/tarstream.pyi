"""Tar header parsing and formatting: the API of tarstream (compiled) and tarstream_py.

Both are built from the one source tarstream_py.py, so they have exactly these public
names (tests/native/test_stubs.py checks it), raise _common.TarError with the same
messages and produce byte-identical output.
"""
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

from ._common import Member

Buffer = Union[bytes, bytearray, memoryview]


class Header(NamedTuple):
    name: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    type: bytes
    linkname: bytes
    uname: bytes
    gname: bytes
    devmajor: int
    devminor: int
    gnu: bool


def padded(size: int) -> int:
    """Bytes a member of `size` occupies, rounded up to whole 512-byte blocks."""


def checksum(block: Buffer) -> int:
    """Unsigned header checksum with the chksum field counted as spaces."""


def set_checksum(block: Union[bytearray, memoryview]) -> None:
    """Write the checksum of a mutable 512-byte header in place."""


def parse_number(field: Buffer) -> int:
    """Decode an octal or GNU base-256 numeric field; TarError when malformed."""


def parse_header(block: Buffer) -> Optional[Header]:
    """Parse one 512-byte header; None for an all-zero block; TarError on a bad checksum."""


def parse_pax(data: Buffer) -> List[Tuple[bytes, bytes]]:
    """Split PAX extended-header data into ordered (key, value) pairs."""


def filter_pax(data: Buffer, drop: Iterable[bytes]) -> bytes:
    """PAX data without the records whose key is in `drop`, the rest verbatim."""


def format_pax(records: Iterable[Tuple[bytes, bytes]]) -> bytes:
    """Encode (key, value) pairs as PAX records."""


def format_number(value: int, width: int) -> bytes:
    """Zero-padded octal + NUL, or GNU base-256 when it does not fit; TarError if too large."""


def format_header(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
                  typeflag: bytes, linkname: bytes = ..., uname: bytes = ..., gname: bytes = ...,
                  devmajor: int = ..., devminor: int = ...) -> bytes:
    """A ustar header, preceded by a PAX header when a field needs one."""


def resolve_member(header: Header, ext: Sequence[Tuple[bytes, bytes]], offset: int,
                   globals_: Sequence[Tuple[bytes, bytes]] = ...) -> Member:
    """Apply global PAX records, then PAX and GNU long-name extensions, to a Header, with
    tarfile's precedence (the first extended header wins)."""
