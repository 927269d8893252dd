"""Bounded, independently seekable views of a region of a file (one handle per view).

Each open layer gets its own file handle, so layers of one tarball can be read by
several threads at once without sharing a file position.
"""
import io
import os


class FileSlice(io.RawIOBase):
    """Read-only file object over path[start:start+size]."""

    def __init__(self, path, start, size):
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self._start = start
        self._size = size
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self):
        return self._pos

    def fileno(self):
        return self._fd

    def readinto(self, buffer):
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        got = os.preadv(self._fd, [memoryview(buffer)[:want]], self._start + self._pos)
        self._pos += got
        return got

    def read(self, size=-1):
        if size is None or size < 0:
            size = self._size - self._pos
        size = min(size, self._size - self._pos)
        if size <= 0:
            return b""
        data = os.pread(self._fd, size, self._start + self._pos)
        self._pos += len(data)
        return data

    def close(self):
        if not self.closed and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()


def read_tail(fileobj, size, count):
    """The last count bytes of a seekable file object that holds size bytes, or None
    when it holds some other number (the tail would not be the blob's)."""
    if fileobj.seek(0, io.SEEK_END) != size or count > size:
        return None
    fileobj.seek(size - count)
    data = b""
    while len(data) < count:
        piece = fileobj.read(count - len(data))
        if not piece:
            return None
        data += piece
    return data
