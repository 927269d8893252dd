"""Exclude/search matcher: the API of globset (compiled) and globset_py, one source.

fnmatch.fnmatchcase semantics on bytes, with a leading `/` or `./` ignored and `**/`
also matching at the top level.
"""
from typing import Iterable, Tuple, Union


def normalize_name(name: bytes) -> bytes:
    """Strip leading './' and '/' and a trailing '/', as tar names are matched."""


class GlobSet:
    patterns: Tuple[bytes, ...]

    def __init__(self, patterns: Iterable[Union[bytes, str]]) -> None:
        """Compile the patterns; ValueError on an empty one."""

    def match(self, name: bytes) -> bool:
        """True when any pattern matches the (already normalized) name."""
