"""Constants, exceptions and result types shared by both twins of the native core.

Keeping them here (not in either twin) means the Cython and pure-Python modules raise
the same exception classes with the same messages (the fastavro pattern).
"""
from collections import namedtuple

BLOCK = 512
RECORD = 10240          # tar's default record size (20 blocks); outputs are padded to it
MAX_EXT_HEADER = 1024 * 1024   # PAX / GNU long-name data of one member (Go archive/tar's cap)
MAX_SPARSE_BLOCKS = 2048       # old GNU sparse extension blocks of one member (1 MiB)

# typeflags (POSIX.1-2001 ustar + GNU extensions)
REGTYPE = b"0"
AREGTYPE = b"\0"
LNKTYPE = b"1"
SYMTYPE = b"2"
CHRTYPE = b"3"
BLKTYPE = b"4"
DIRTYPE = b"5"
FIFOTYPE = b"6"
CONTTYPE = b"7"
XHDTYPE = b"x"
XGLTYPE = b"g"
GNU_LONGNAME = b"L"
GNU_LONGLINK = b"K"
GNU_SPARSE = b"S"


WHITEOUT_PREFIX = b".wh."
OPAQUE_MARKER = b".wh..wh..opq"


class TarError(ValueError):
    """The byte stream is not a well-formed tar archive."""


# One archive member as seen after extended headers are applied.  `name` is the full
# path as CPython tarfile reports it (PAX path > GNU longname > prefix/name, trailing
# slash removed); `offset` is where its data starts in the stream that was parsed.
Member = namedtuple("Member", "name type size mode mtime uid gid linkname offset xattrs")
