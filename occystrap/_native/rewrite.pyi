"""Streaming tar rewriter: the API shared by rewrite.pyx and rewrite_py.py.

The Cython class subclasses the pure one and overrides feed() only (its C driver decides
nothing the shared rules do not), so both have the same constructor, attributes and
close(); tests/native/test_stubs.py keeps this file in step.
"""
from typing import List, Optional, Union

from ._common import Member
from .globset import GlobSet


class TarRewriter:
    members: List[Member]
    dropped: int
    count: int

    def __init__(self, mtime: Optional[int] = None, exclude: Optional[GlobSet] = None,
                 rewrite: bool = True, collect: bool = False, clamp: bool = False) -> None:
        """mtime: set every member's mtime (clamp: only those later than it); exclude:
        members to drop (never whiteouts); rewrite=False only parses; collect keeps a
        Member per member."""

    def feed(self, data: Union[bytes, bytearray, memoryview]) -> bytearray:
        """Consume a chunk of the tar stream; return the rewritten bytes it completes."""

    def close(self) -> bytearray:
        """Check the stream is complete (TarError if not); return the end-of-archive blocks."""
