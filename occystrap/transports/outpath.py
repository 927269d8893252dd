"""What may stand at an output path, and how a finished output replaces it.

Every file output is built under a temporary name and renamed into place (issue 8 §3,
"outputs lose nothing").  A rename replaces whatever has the final name, so the path is
checked first, before anything is written:

* a symlink is followed: the output replaces what it points to and the link stays, as
  with the shell's `>`;
* a file output (tar://) may replace only a regular file: a rename over a device, FIFO or
  socket would turn it into a regular file (as root, `tar:///dev/null` once replaced
  /dev/null);
* a directory output built aside (oci://, mounts://) may replace only an empty
  directory;
* a tree replaced in place (dir://?expand=true) is exchanged with the new one in one
  step (Linux renameat2 RENAME_EXCHANGE), so the path is always one whole tree.
"""
import ctypes
import errno
import os
import stat

from ..errors import OutputError

_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))

AT_FDCWD = -100
RENAME_EXCHANGE = 2
# the kernel, filesystem or libc cannot exchange: fall back to two renames
NO_EXCHANGE = frozenset([errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP])


def _stat(path, shown):
    """os.stat(path), None when it does not exist (a dangling symlink's target is created)."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OutputError("cannot use output path %s: %s" % (shown, exc.strerror)) from None


def _kind(st):
    return next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")


def _parent_exists(target):
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise OutputError("Output directory does not exist: %s" % parent)


def file_output(path):
    """The regular file an output written to path will replace (symlinks resolved).

    :raises OutputError: path is a directory, a device, FIFO or socket, or its
        directory does not exist.
    """
    target = os.path.realpath(path)
    st = _stat(target, path)
    if st is None:
        _parent_exists(target)
    elif stat.S_ISDIR(st.st_mode):
        raise OutputError("Output path is a directory: %s" % path)
    elif not stat.S_ISREG(st.st_mode):
        raise OutputError("Output path exists and is not a regular file: %s (%s)"
                          % (path, _kind(st)))
    return target


def empty_dir_output(path):
    """The directory a bundle built aside will be renamed to (symlinks resolved).

    :raises OutputError: something other than an empty directory is there, or the
        parent directory does not exist.
    """
    target = os.path.realpath(path)
    st = _stat(target, path)
    if st is None:
        _parent_exists(target)
    elif not stat.S_ISDIR(st.st_mode) or os.listdir(target):
        raise OutputError("Output path exists and is not an empty directory: %s" % path)
    return target


def check_appendable(path, what):
    """Fail unless path can be opened for appending, without creating it: an existing
    non-directory this process may write, or a new name in a writable directory.

    :param what: names the output in the message (`inspect: cannot write ...`).
    :raises OutputError: with the reason open() would give.
    """
    target = os.path.realpath(path)
    st = _stat(target, path)
    if st is not None:
        problem = (errno.EISDIR if stat.S_ISDIR(st.st_mode)
                   else None if os.access(target, os.W_OK) else _denied(target))
    else:
        parent = os.path.dirname(target)
        problem = (errno.ENOENT if not os.path.isdir(parent)
                   else None if os.access(parent, os.W_OK | os.X_OK) else _denied(parent))
    if problem is not None:
        raise OutputError("%s: cannot write %s: %s" % (what, path, os.strerror(problem)))


def _denied(path):
    """Why access() refused path: a read-only filesystem, else permissions."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return errno.EROFS
    except OSError:
        pass
    return errno.EACCES


def same_file(first, second):
    """True when both paths name one file: the same path once symlinks are resolved
    (whether or not it exists yet), or one existing file (also via a hard link)."""
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


_LIBC = []


def _renameat2():
    if not _LIBC:
        try:
            _LIBC.append(ctypes.CDLL(None, use_errno=True).renameat2)
        except (OSError, AttributeError):        # not Linux, or glibc < 2.28
            _LIBC.append(None)
    return _LIBC[0]


def exchange(first, second):
    """Swap two existing paths atomically; False where this system cannot.

    :raises OSError: the exchange itself failed (e.g. a path is missing).
    """
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second),
                 RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), second)


def replace_tree(new, target, aside):
    """Put the directory new at target; return where the replaced tree now is (for the
    caller to delete), or None when target did not exist.

    With an exchange target is the old tree, then the new one, never anything else, and
    the old tree ends up at new's name.  Without one the old tree is first renamed to
    aside, so for a moment target does not exist; a failure then puts it back.
    """
    if not os.path.lexists(target):
        os.rename(new, target)
        return None
    if exchange(new, target):
        return new
    os.rename(target, aside)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    return aside
