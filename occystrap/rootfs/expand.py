"""Flatten uncompressed layer tarballs into a root filesystem, as a container runtime does.

Layers are applied in order following the OCI image-spec layer changeset rules
(https://github.com/opencontainers/image-spec/blob/main/layer.md, "Whiteouts"):

* A whiteout entry `DIR/.wh.NAME` removes `DIR/NAME` (a file, a link, or a whole
  directory tree) produced by LOWER layers.  Whiteouts only apply to lower layers, so
  each layer's whiteouts are applied before its other entries are extracted, and
  whiteout entries themselves never appear in the result.
* An opaque whiteout `DIR/.wh..wh..opq` removes every child of `DIR` produced by lower
  layers; entries of the same layer under `DIR` survive.  At the top level it clears
  the whole lower root filesystem.

Fixed relative to occystrap 0.4.17 (spec B.6, E.2 item 3):

* an opaque whiteout removed every earlier path that merely *started with* the
  directory string, so `etc/.wh..wh..opq` also deleted the sibling `etcetera/`;
  here it clears exactly the children of `etc/`;
* a whiteout for a path that no lower layer created crashed with KeyError; here it is
  ignored, as runtimes do.

Layers are untrusted input, so paths are resolved chroot-style by this module (lstat per
component, symlinks followed *within* the root, absolute symlink targets re-rooted),
never by the OS: a `..` component or an absolute member name, a symlink that climbs
out of the root and a hardlink to outside the root all raise UnsafePathError.  The
final component is never followed (O_NOFOLLOW, lstat, unlink before create).

File data is copied kernel-side from the layer file with os.copy_file_range (falling
back to os.sendfile, then a bounded read/write loop), never read whole into memory.
Directory modes and mtimes are applied after all layers, deepest first, so creating
entries inside a directory cannot disturb them.
"""
import errno
import logging
import os
import shutil
import stat

from .._native import rewrite, tarstream
from .._native._common import (BLKTYPE, BLOCK, CHRTYPE, DIRTYPE, FIFOTYPE, GNU_SPARSE, LNKTYPE,
                               OPAQUE_MARKER, SYMTYPE, WHITEOUT_PREFIX, TarError)
from ..errors import InputError, OutputError, UnsafePathError, describe_tar_error

LOG = logging.getLogger(__name__)

IMPLICIT_DIR_MODE = 0o755
MAX_SYMLINK_HOPS = 40                 # as the kernel's MAXSYMLINKS
MAX_SECONDS = (1 << 63) // 10 ** 9 - 1  # os.utime(ns=...) takes a signed 64-bit count
COPY_CHUNK = 1 << 20                  # read/write fallback buffer
SCAN_CHUNK = 1 << 20                  # read size of the member scan
MAX_COPY = 1 << 30                    # per copy_file_range / sendfile call
IGNORED_XATTR_ERRORS = frozenset([errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP])
MALFORMED_XATTR_ERRORS = frozenset([errno.EINVAL, errno.ERANGE, errno.E2BIG])
FALLBACK_ERRORS = frozenset([errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                             errno.ENOTSUP, errno.EBADF, errno.EPERM])
AUFS_META_PREFIX = WHITEOUT_PREFIX + WHITEOUT_PREFIX      # .wh..wh.plnk, .wh..wh.aufs, ...
OPEN_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

STAT_KEYS = ("files", "dirs", "symlinks", "hardlinks", "whiteouts", "devices_skipped",
             "bytes", "fifos", "devices")


def expand_layers(layer_paths, root):
    """Apply the uncompressed layer tarballs in layer_paths, bottom first, into root.

    :param layer_paths: paths of uncompressed tar files, lowest layer first.
    :param root: destination directory; created if missing.
    :returns: a dict of counts: files, dirs, symlinks, hardlinks, whiteouts,
        devices_skipped, bytes (file data written), fifos, devices (created).
    :raises UnsafePathError: a member would be written outside root.
    :raises InputError: a layer is unreadable or malformed.
    :raises OutputError: the destination could not be written.
    """
    expander = LayerExpander(root)
    for layer_path in layer_paths:
        expander.apply(layer_path)
    return expander.finish()


class LayerExpander:
    """expand_layers one layer at a time, so a caller can apply each layer as soon as it
    is written (background.py).  Same errors as expand_layers."""

    def __init__(self, root):
        try:
            os.makedirs(root, exist_ok=True)
        except OSError as exc:
            raise OutputError("cannot create %s: %s" % (root, exc.strerror)) from None
        self._tree = _Tree(root)

    def apply(self, layer_path, overlay=False):
        """Apply the next layer up (uncompressed tar file)."""
        _apply_layer(self._tree, layer_path, overlay)

    def finish(self):
        """Set directory modes and mtimes; return the counts."""
        self._tree.finish_dirs()
        return dict(self._tree.stats)


# -- names ---------------------------------------------------------------------------

def current_umask():
    """The process umask, read without changing it (/proc), so other threads never see
    a temporary value; elsewhere the classic set-and-restore."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _join(directory, name):
    return directory.rstrip(b"/") + b"/" + name


def _ns(mtime):
    """(atime, mtime) in nanoseconds for os.utime, clamped to what it accepts."""
    seconds = max(-MAX_SECONDS, min(MAX_SECONDS, mtime))
    return seconds * 10 ** 9, seconds * 10 ** 9


# Names come from the layer: a newline or NUL in one must not break the one-line error.
_CONTROL_ESCAPES = {code: "\\x%02x" % code for code in list(range(32)) + [127]}


def _show(name):
    return name.decode("utf-8", "backslashreplace").translate(_CONTROL_ESCAPES)


def _components(name, what="member"):
    """Split a tar name into path components relative to the root ([] is the root).

    A leading './' is dropped; '', '.' components are ignored.
    :raises UnsafePathError: for an absolute name or a '..' component.
    """
    if name.startswith(b"/"):
        raise UnsafePathError("%s %s is an absolute path" % (what, _show(name)))
    parts = [part for part in name.split(b"/") if part not in (b"", b".")]
    if b".." in parts:
        raise UnsafePathError("%s %s contains a '..' component" % (what, _show(name)))
    return parts


# -- the destination tree ------------------------------------------------------------

class _Tree:
    """The root being built: chroot-style path resolution plus bookkeeping.

    `known` caches real (symlink-free) directory paths already verified or created;
    `dir_meta` holds the (mode, mtime) to apply to each directory at the end.  Both
    are keyed by absolute byte paths and are pruned whenever a tree is removed, so a
    stale entry can never point through a path that later became a symlink.
    """

    def __init__(self, root):
        self.root = os.fsencode(os.path.abspath(root))
        self.prefix = self.root.rstrip(b"/") + b"/"
        self.known = {self.root}
        self.dir_meta = {}
        self.is_root = os.geteuid() == 0
        # What a new entry is owned by without a chown: our euid:egid, unless a setgid
        # root makes new entries inherit its group.  Members owned by exactly that skip
        # the chown (most members of most images are 0:0).
        self.umask = current_umask()    # modes it cannot alter are given to open()
        self.owner = (os.geteuid(), os.getegid())
        try:
            if os.stat(self.root).st_mode & stat.S_ISGID:
                self.owner = None
        except FileNotFoundError:
            pass
        self.stats = dict.fromkeys(STAT_KEYS, 0)

    def needs_chown(self, member):
        return self.is_root and (member.uid, member.gid) != self.owner

    def path(self, parts):
        return self.prefix + b"/".join(parts) if parts else self.root

    def resolve_dir(self, parts, name, create):
        """Real path of the directory `parts`, following symlinks inside the root.

        Missing directories are created (mode 0755) when `create`; otherwise a missing
        or non-directory component returns None.
        Absolute targets restart at the root and a '..' of theirs at the root stays
        there (chroot semantics); a relative target that climbs above the root is refused.
        :raises UnsafePathError: a relative symlink target climbs above the root.
        """
        fast = self.path(parts)
        if fast in self.known:
            return fast
        # (component, rooted): `rooted` components come from an absolute symlink target,
        # where '..' at the root stays at the root, as in a chroot
        pending = [(part, False) for part in reversed(parts)]
        real = []
        hops = 0
        while pending:
            part, rooted = pending.pop()
            if part in (b"", b"."):
                continue
            if part == b"..":
                if real:
                    real.pop()
                elif not rooted:
                    raise UnsafePathError("%s escapes the image root via a symlink" % _show(name))
                continue
            real.append(part)
            current = self.path(real)
            if current in self.known:
                continue
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                if not create:
                    return None
                self.make_dir(current, IMPLICIT_DIR_MODE, None)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise InputError("%s: too many levels of symbolic links" % _show(name))
                target = os.readlink(current)
                real.pop()
                rooted = target.startswith(b"/")
                if rooted:
                    real = []
                pending.extend((part, rooted) for part in reversed(target.split(b"/")))
            elif stat.S_ISDIR(st.st_mode):
                self.known.add(current)
            elif create:
                raise InputError("%s: parent %s is not a directory"
                                 % (_show(name), _show(current[len(self.prefix):])))
            else:
                return None
        return self.path(real)

    def make_dir(self, path, mode, mtime):
        os.mkdir(path, 0o700 | IMPLICIT_DIR_MODE)
        self.known.add(path)
        self.dir_meta[path] = (mode, mtime)

    def remove(self, path):
        """Remove whatever is at path (never following a final symlink)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            self.forget(path)
        else:
            os.unlink(path)
        return True

    def clear_dir(self, path):
        """Remove every child of the directory at path."""
        for child in os.listdir(path):
            full = _join(path, child)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(full)
            else:
                os.unlink(full)
        self.forget_under(path)

    def forget(self, path):
        self.known.discard(path)
        self.dir_meta.pop(path, None)
        self.forget_under(path)

    def forget_under(self, path):
        below = path.rstrip(b"/") + b"/"
        self.known = {p for p in self.known if not p.startswith(below)}
        for p in [p for p in self.dir_meta if p.startswith(below)]:
            del self.dir_meta[p]

    def finish_dirs(self):
        """Apply directory modes and mtimes, deepest first, so they stick."""
        for path in sorted(self.dir_meta, key=lambda p: p.count(b"/"), reverse=True):
            mode, mtime = self.dir_meta[path]
            try:
                fd = os.open(path, OPEN_DIR)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    continue                     # replaced since: nothing to apply
                raise OutputError("cannot open directory %s: %s"
                                  % (_show(path), exc.strerror)) from None
            try:
                os.fchmod(fd, mode)
                if mtime is not None:
                    os.utime(fd, ns=_ns(mtime))
            except OSError as exc:
                raise OutputError("cannot set metadata of %s: %s"
                                  % (_show(path), exc.strerror)) from None
            finally:
                os.close(fd)


# -- applying a layer ----------------------------------------------------------------

def _scan_members(layer):
    """Every Member of the layer file, offsets absolute.  One sequential read through
    the native scanner: faster than seeking header to header in Python when layers have
    many small files, and page-cache reads of the data are cheap."""
    scanner = rewrite.TarRewriter(rewrite=False, collect=True)
    buffer = bytearray(SCAN_CHUNK)
    view = memoryview(buffer)
    while True:
        count = layer.readinto(buffer)
        if not count:
            break
        scanner.feed(view[:count])
    scanner.close()
    return scanner.members


def _read_members(layer_path):
    try:
        layer = open(layer_path, "rb")
    except OSError as exc:
        raise InputError("cannot read layer %s: %s" % (layer_path, exc.strerror)) from None
    try:
        return layer, _scan_members(layer)
    except TarError as exc:
        layer.close()
        raise describe_tar_error(exc, layer_path) from None
    except BaseException:
        layer.close()
        raise


def _apply_layer(tree, layer_path, overlay=False):
    """Whiteouts first (they delete from lower layers), then the entries.  overlay: keep
    whiteouts as overlayfs reads them instead (extract_overlay_layer)."""
    layer, members = _read_members(layer_path)
    on_whiteout = _overlay_whiteout if overlay else _apply_whiteout
    with layer:
        entries = []
        for member in members:
            if overlay and member.xattrs:
                member = member._replace(xattrs={
                    key: value for key, value in member.xattrs.items()
                    if not key.startswith(OVERLAY_XATTR_PREFIX)})
            if b"\0" in member.name or b"\0" in (member.linkname or b""):
                # PAX path/linkpath records can hold one; no file system name can
                raise InputError("%s: member %s has a NUL byte in its name or link target"
                                 % (layer_path, _show(member.name)))
            parts = _components(member.name)
            base = parts[-1] if parts else b""
            if base.startswith(WHITEOUT_PREFIX):
                _guard(tree, layer_path, member, on_whiteout, parts)
            else:
                entries.append((member, parts))
        for member, parts in entries:
            _guard(tree, layer_path, member, _extract, layer, parts)


def _guard(tree, layer_path, member, func, *args):
    """Run func, turning destination OSErrors into one-line OutputErrors."""
    try:
        func(tree, member, *args)
    except OSError as exc:
        raise OutputError("%s: cannot apply %s: %s"
                          % (layer_path, _show(member.name), exc.strerror or exc)) from None


def _apply_whiteout(tree, member, parts):
    base = parts[-1]
    tree.stats["whiteouts"] += 1
    parent = tree.resolve_dir(parts[:-1], member.name, create=False)
    if base == OPAQUE_MARKER:
        if parent is not None:
            tree.clear_dir(parent)
        return
    if base.startswith(AUFS_META_PREFIX):
        return                               # aufs bookkeeping (.wh..wh.plnk ...)
    target = base[len(WHITEOUT_PREFIX):]
    if target in (b"", b".", b".."):
        raise UnsafePathError("whiteout %s names no entry" % _show(member.name))
    if parent is not None:
        tree.remove(_join(parent, target))  # a missing target is not an error


def _extract(tree, member, layer, parts):
    kind = member.type
    if not parts:
        if kind != DIRTYPE:
            raise InputError("%s: the image root can only be a directory" % _show(member.name))
        _set_owner_xattrs(tree, tree.root, member, fresh=False)
        tree.dir_meta[tree.root] = (member.mode & 0o7777, member.mtime)
        return
    parent = tree.resolve_dir(parts[:-1], member.name, create=True)
    dest = _join(parent, parts[-1])
    handler = _HANDLERS.get(kind, _extract_file)
    handler(tree, member, dest, layer)


def _prepare(tree, dest, is_dir):
    """Clear dest for a new entry.  Returns True when an existing directory is kept."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        if is_dir:
            tree.known.add(dest)
            return True
        shutil.rmtree(dest)
        tree.forget(dest)
    else:
        os.unlink(dest)
    return False


def _create(tree, dest, is_dir, make):
    """Run make(dest); only when something is already there (a later layer replacing a
    path: rare) clear it with _prepare first.  Trying first saves an lstat per entry.
    Returns True when an existing directory is kept instead (is_dir only)."""
    try:
        make(dest)
        return False
    except FileExistsError:
        if _prepare(tree, dest, is_dir):
            return True
    make(dest)
    return False


def _extract_dir(tree, member, dest, layer):
    mode = member.mode & 0o7777
    kept = _create(tree, dest, True, lambda path: tree.make_dir(path, mode, member.mtime))
    if kept:
        tree.dir_meta[dest] = (mode, member.mtime)
    _set_owner_xattrs(tree, dest, member, fresh=not kept)
    tree.stats["dirs"] += 1


def _extract_file(tree, member, dest, layer):
    if member.type == GNU_SPARSE:
        raise InputError("%s: GNU sparse files are not supported" % _show(member.name))
    mode = member.mode & 0o7777
    # The mode is given to open() when the umask cannot change it and there are no
    # setuid/setgid/sticky bits (a chown clears those): one fchmod less per file.
    at_open = not (mode & 0o7000 or mode & tree.umask)
    fds = []
    _create(tree, dest, False, lambda path: fds.append(
        os.open(path, OPEN_NEW_FILE, mode if at_open else 0o600)))
    fd = fds[0]
    try:
        _copy_range(layer.fileno(), fd, member.offset, member.size, member.name)
        if tree.needs_chown(member):
            os.fchown(fd, member.uid, member.gid)
        if not at_open:
            os.fchmod(fd, mode)                 # after the chown, which clears setuid bits
        _set_xattrs(fd, member, True)
        os.utime(fd, ns=_ns(member.mtime))
    finally:
        os.close(fd)
    tree.stats["files"] += 1
    tree.stats["bytes"] += member.size


def _extract_symlink(tree, member, dest, layer):
    _create(tree, dest, False, lambda path: os.symlink(member.linkname, path))
    _set_owner_xattrs(tree, dest, member)
    os.utime(dest, ns=_ns(member.mtime), follow_symlinks=False)
    tree.stats["symlinks"] += 1


def _extract_hardlink(tree, member, dest, layer):
    target_parts = _components(member.linkname, "hardlink target")
    if not target_parts:
        raise InputError("%s: hardlink to the image root" % _show(member.name))
    parent = tree.resolve_dir(target_parts[:-1], member.name, create=False)
    target = None if parent is None else _join(parent, target_parts[-1])
    try:
        st = os.lstat(target) if target is not None else None
    except FileNotFoundError:
        st = None
    if st is None:
        raise InputError("%s: hardlink target %s does not exist"
                         % (_show(member.name), _show(member.linkname)))
    if stat.S_ISDIR(st.st_mode):
        raise InputError("%s: hardlink target %s is a directory"
                         % (_show(member.name), _show(member.linkname)))
    if target == dest:
        return
    _prepare(tree, dest, False)
    try:
        os.link(target, dest, follow_symlinks=False)
    except FileNotFoundError:
        raise InputError("%s: hardlink target %s does not exist"
                         % (_show(member.name), _show(member.linkname))) from None
    tree.stats["hardlinks"] += 1


def _extract_fifo(tree, member, dest, layer):
    _prepare(tree, dest, False)
    os.mkfifo(dest, 0o600)
    _set_special_meta(tree, dest, member)
    tree.stats["fifos"] += 1


def _extract_device(tree, member, dest, layer):
    _prepare(tree, dest, False)
    if not tree.is_root:
        tree.stats["devices_skipped"] += 1
        return
    major, minor = _device_numbers(layer, member)
    kind = stat.S_IFCHR if member.type == CHRTYPE else stat.S_IFBLK
    try:
        os.mknod(dest, kind | 0o600, os.makedev(major, minor))
    except PermissionError:                  # root without CAP_MKNOD (containers)
        tree.stats["devices_skipped"] += 1
        return
    _set_special_meta(tree, dest, member)
    tree.stats["devices"] += 1


_HANDLERS = {
    DIRTYPE: _extract_dir,
    SYMTYPE: _extract_symlink,
    LNKTYPE: _extract_hardlink,
    FIFOTYPE: _extract_fifo,
    CHRTYPE: _extract_device,
    BLKTYPE: _extract_device,
}


def _device_numbers(layer, member):
    """devmajor/devminor from the ustar header just before the member's data offset."""
    header = os.pread(layer.fileno(), BLOCK, member.offset - BLOCK)
    if len(header) != BLOCK:
        raise InputError("%s: truncated device header" % _show(member.name))
    try:
        return tarstream.parse_number(header[329:337]), tarstream.parse_number(header[337:345])
    except TarError as exc:
        raise InputError("%s: %s" % (_show(member.name), exc)) from None


# -- metadata --------------------------------------------------------------------------

def _set_owner_xattrs(tree, path, member, fresh=True):
    """fresh: path was just created by us, so it is owned by tree.owner already."""
    if tree.is_root and (not fresh or tree.needs_chown(member)):
        os.lchown(path, member.uid, member.gid)
    _set_xattrs(path, member, False)


def _set_special_meta(tree, path, member):
    """Ownership, mode, xattrs and mtime of a fifo or device node (never a symlink)."""
    _set_owner_xattrs(tree, path, member)
    os.chmod(path, member.mode & 0o7777)
    os.utime(path, ns=_ns(member.mtime))


def _set_xattrs(target, member, follow):
    """Best effort: unsupported or forbidden attributes are skipped quietly, malformed
    ones (a security.capability the kernel cannot parse: EINVAL, a NUL in the name)
    with a warning, since the image carries something that will not work."""
    for key, value in (member.xattrs or {}).items():
        try:
            os.setxattr(target, key, value, follow_symlinks=follow)
        except OSError as exc:
            if exc.errno in IGNORED_XATTR_ERRORS:
                LOG.debug("xattr %s not set: %s", _show(key), exc.strerror)
            elif exc.errno in MALFORMED_XATTR_ERRORS:
                LOG.warning("%s: xattr %s skipped: %s", _show(member.name), _show(key),
                            exc.strerror)
            else:
                raise
        except ValueError:              # a NUL byte in the name: os.setxattr refuses it
            LOG.warning("%s: xattr %s skipped: NUL byte in its name", _show(member.name),
                        _show(key))


# -- data ------------------------------------------------------------------------------

def _copy_range(src_fd, dst_fd, offset, size, name):
    """Copy size bytes at offset of src_fd to dst_fd's current position, kernel-side."""
    done = 0
    for step in (_step_copy_file_range, _step_sendfile, _step_read_write):
        try:
            while done < size:
                count = step(src_fd, dst_fd, offset + done, min(size - done, MAX_COPY))
                if count == 0:
                    raise InputError("%s: layer data is truncated" % _show(name))
                done += count
            return
        except OSError as exc:
            if exc.errno not in FALLBACK_ERRORS or step is _step_read_write:
                raise


def _step_copy_file_range(src_fd, dst_fd, offset, count):
    if not hasattr(os, "copy_file_range"):
        raise OSError(errno.ENOSYS, "copy_file_range unavailable")
    return os.copy_file_range(src_fd, dst_fd, count, offset)


def _step_sendfile(src_fd, dst_fd, offset, count):
    return os.sendfile(dst_fd, src_fd, offset, count)


def _step_read_write(src_fd, dst_fd, offset, count):
    data = os.pread(src_fd, min(count, COPY_CHUNK), offset)
    view = memoryview(data)
    while view:
        written = os.write(dst_fd, view)
        view = view[written:]
    return len(data)


# -- one layer "as is": an overlayfs lower directory (mounts://) -----------------------
#
# Everything above this line applies whiteouts; this helper keeps them, in the form
# overlayfs reads (Documentation/filesystems/overlayfs.rst, "whiteouts and opaque
# directories"), so each layer can be stacked as a lowerdir.  It reuses the same
# chroot-style resolution, so a member can never land outside `root`.

OVERLAY_OPAQUE_XATTR = b"trusted.overlay.opaque"
OVERLAY_XATTR_PREFIX = b"trusted.overlay."


def extract_overlay_layer(layer_path, root):
    """Extract one uncompressed layer into root as an overlayfs lower directory.

    Whiteouts are kept, converted in the directory of the whiteout member itself
    (upstream E.2 #2 put nested ones at the layer root, so the files stayed visible):
    `DIR/.wh.NAME` becomes a 0:0 character device `DIR/NAME`, `DIR/.wh..wh..opq` sets
    `trusted.overlay.opaque=y` on DIR.  `trusted.overlay.*` xattrs carried by members
    are dropped: only whiteouts may steer overlayfs (no redirect or metacopy tricks).
    Needs root (mknod, trusted.* xattrs); a refusal is an OutputError.

    :returns: the same counts as expand_layers.
    :raises UnsafePathError: a member would be written outside root.
    :raises InputError: the layer is unreadable or malformed.
    :raises OutputError: root could not be written.
    """
    expander = LayerExpander(root)
    expander.apply(layer_path, overlay=True)
    return expander.finish()


def _overlay_whiteout(tree, member, parts):
    base = parts[-1]
    if base.startswith(AUFS_META_PREFIX) and base != OPAQUE_MARKER:
        return                               # aufs bookkeeping (.wh..wh.plnk ...)
    target = base[len(WHITEOUT_PREFIX):]
    if base != OPAQUE_MARKER and target in (b"", b".", b".."):
        raise UnsafePathError("whiteout %s names no entry" % _show(member.name))
    parent = tree.resolve_dir(parts[:-1], member.name, create=True)
    tree.stats["whiteouts"] += 1
    if base == OPAQUE_MARKER:
        os.setxattr(parent, OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
        return
    dest = _join(parent, target)
    _prepare(tree, dest, False)
    os.mknod(dest, stat.S_IFCHR, os.makedev(0, 0))
