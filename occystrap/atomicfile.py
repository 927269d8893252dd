"""Whole-file writes that readers never see half done: temp file in the same directory,
then one rename; and the directory lock under which runs sharing an output directory
change its shared files.  The one home of write_atomic, dump_json and locked (dir://,
mounts://, oci://, ocidir://)."""
import contextlib
import fcntl
import json
import os
import tempfile


def write_atomic(path, data):
    """Write bytes to path via a temp file + rename, so readers never see half a file.

    Raises OSError; the temp file is removed on any failure."""
    fd, temp = tempfile.mkstemp(prefix=".occystrap-", suffix=".partial",
                                dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as fileobj:
            fileobj.write(data)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def dump_json(value):
    """JSON as occystrap stores it on disk (indent 4, sorted keys, ASCII), as bytes."""
    return json.dumps(value, indent=4, sort_keys=True).encode()


@contextlib.contextmanager
def locked(path):
    """Hold the flock of the directory path itself while a shared file in it (a
    catalog, an index.json) is read, changed and replaced: two runs lose nothing."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
