"""A LayerWriter that streams into a temporary file and renames it into place on commit.

The final name (which contains the layer digest) is known only at the end of the
stream; the temp file lives in the destination directory so the rename is atomic.
"""
import os
import tempfile

from .base import LayerWriter


class FileLayerWriter(LayerWriter):
    def __init__(self, directory, target_for, on_commit):
        """:param target_for: result -> final path; :param on_commit: (result, path) -> None."""
        fd, self.temp = tempfile.mkstemp(prefix=".occystrap-layer-", suffix=".partial",
                                         dir=directory)
        self._file = os.fdopen(fd, "wb")
        self._target_for = target_for
        self._on_commit = on_commit

    def write(self, data):
        self._file.write(data)

    def commit(self, result):
        self._file.close()
        target = self._target_for(result)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if _same_size(target, result.size):     # the same layer twice: keep one copy
            os.unlink(self.temp)
            created = False
        else:       # new, or another run's file of another size (0.4.17's, a cut one)
            os.chmod(self.temp, 0o644)
            os.replace(self.temp, target)
            created = True
        self._on_commit(result, target, created)

    def abort(self):
        self._file.close()
        if os.path.exists(self.temp):
            os.unlink(self.temp)


def _same_size(path, size):
    try:
        return os.path.getsize(path) == size
    except OSError:
        return False
