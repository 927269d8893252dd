"""mounts:// sink (0.4.17 spec B.7): every layer as an overlayfs lower directory, the image
mounted at PATH/rootfs.

Layout of PATH (docs/mounts.md):

    <diff_id hex>/layer.tar   the uncompressed (filtered) layer
    <diff_id hex>/layer/      that layer extracted as is, whiteouts in overlayfs form
    manifest.json, catalog.json, config.json (runc spec), container-config.json (image config)
    delta/ (upperdir), working/ (workdir), rootfs/ (the overlay mount, left mounted)

Fixes over 0.4.17: a nested whiteout becomes a device in its own directory, so files
deleted below the root really disappear from rootfs (E.2 #2); extraction is the chroot-style
one of rootfs/expand.py (no `..`, absolute names or symlink escapes); everything is built in a
sibling temp directory, renamed onto PATH and only then mounted, and a failed run leaves
nothing behind; verification checks the layer directories and the mount (0.4.17: a no-op).
"""
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading

from ... import tarindex
from ...atomicfile import dump_json, write_atomic
from ...errors import InputError, OutputError
from ...model import digest_hex, repo_tags
from ...rootfs import expand, runc
from ..base import ImageSink
from ..filewriter import FileLayerWriter
from ..outpath import empty_dir_output

LOG = logging.getLogger(__name__)

BUNDLE_FILES = ("manifest.json", "catalog.json", "config.json", "container-config.json")
OVERLAY_DIRS = ("delta", "working", "rootfs")
MOUNT_STYLES = ("plus", "colon")


def overlay_options(lowers, style):
    """The -o string for lowers (newest first): one `lowerdir+=` each (kernel >= 6.8) or
    one colon-joined `lowerdir=` (every kernel, but bounded by the one-page mount data)."""
    if style == "plus":
        lower = ",".join("lowerdir+=" + lowerdir for lowerdir in lowers)
    else:
        lower = "lowerdir=" + ":".join(lowers)
    return lower + ",upperdir=delta,workdir=working"


def mount_overlay(path, lowers, styles=MOUNT_STYLES):
    """Mount the overlay on PATH/rootfs; lowers are relative to PATH, newest first.

    `mount` runs with PATH as its working directory and every path is relative, so PATH
    may contain ',' or ':' (option separators) and the options stay short.
    :returns: the style that worked.
    :raises OutputError: every style failed (the last mount error is quoted).
    """
    message = "no mount style tried"
    for style in styles:
        command = ["mount", "-t", "overlay", "overlay", "-o", overlay_options(lowers, style),
                   "rootfs"]
        try:
            proc = subprocess.run(command, cwd=path, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise OutputError("cannot run mount: %s" % exc.strerror) from None
        if proc.returncode == 0:
            return style
        message = (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[0]
        LOG.debug("overlay mount (%s) failed: %s", style, proc.stderr.strip())
    raise OutputError("cannot mount overlay at %s: %s" % (os.path.join(path, "rootfs"), message))


def mount_type(path):
    """The filesystem type mounted at path (the topmost mount), or None."""
    path = os.path.realpath(path)
    found = None
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if point == path:
                found = fields[fields.index("-") + 1]
    return found


class _LayerWriter(FileLayerWriter):
    """Streams a layer into a temp file; on commit the sink extracts it as a lower dir."""

    def __init__(self, sink):
        super().__init__(sink._stage, None, None)
        self._sink = sink

    def commit(self, result):
        self._file.close()
        self._sink._store(self.temp, result)


class MountsSink(ImageSink):
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self._stage = None          # sibling temp directory, renamed onto PATH in finish()
        self._published = False     # PATH is ours (renamed into place)
        self._existed = False       # PATH was an empty directory before the run
        self._lock = threading.Lock()
        self._names = set()         # diff_id hexes stored (a repeated layer is stored once)
        self._hexes = []
        self.whiteouts = 0

    @classmethod
    def from_uri(cls, uri, options):
        return cls(uri.path)

    def begin(self, source):
        self.image, self.tag = source.image, source.tag
        self.qualified_image = source.qualified_image
        for name in ("setxattr", "mknod", "geteuid"):
            if not hasattr(os, name):        # not Linux: no overlayfs either
                raise OutputError("mounts:// needs os.%s, which this platform lacks" % name)
        if os.geteuid() != 0:
            raise OutputError("mounts:// needs root: it mounts overlayfs and creates whiteout "
                              "devices and trusted.* xattrs")
        self.path = empty_dir_output(self.path)
        parent = os.path.dirname(self.path)
        self._existed = os.path.isdir(self.path)
        try:
            self._stage = tempfile.mkdtemp(prefix="." + os.path.basename(self.path) + ".",
                                           suffix=".partial", dir=parent)
        except OSError as exc:
            raise OutputError("cannot create a directory in %s: %s"
                              % (parent, exc.strerror)) from None
        os.chmod(self._stage, 0o755)
        self._probe()

    def _probe(self):
        """Fail before any transfer when whiteouts cannot be made here: trusted.* xattrs
        need CAP_SYS_ADMIN and filesystem support; a 0:0 device needs CAP_MKNOD before
        Linux 5.8."""
        probe = os.path.join(self._stage, ".probe")
        try:
            os.mknod(probe, stat.S_IFCHR, os.makedev(0, 0))
            os.unlink(probe)
            os.mkdir(probe)
            os.setxattr(probe, expand.OVERLAY_OPAQUE_XATTR, b"y")
            os.rmdir(probe)
        except OSError as exc:
            self.abort()
            raise OutputError("mounts:// cannot create overlay whiteouts in %s: %s (needs "
                              "CAP_SYS_ADMIN and a filesystem with trusted.* xattrs)"
                              % (os.path.dirname(self.path), exc.strerror)) from None

    def open_layer(self, ref):
        return _LayerWriter(self)

    def _store(self, temp, result):
        """Rename the layer into <hex>/layer.tar and extract it into <hex>/layer (called
        from layer threads; each layer has its own directory, so only the claim locks)."""
        name = digest_hex(result.diff_id)
        with self._lock:
            first = name not in self._names
            self._names.add(name)
        if not first:
            os.unlink(temp)
            return
        layer_dir = os.path.join(self._stage, name)
        os.mkdir(layer_dir, 0o755)
        tar_path = os.path.join(layer_dir, "layer.tar")
        os.chmod(temp, 0o644)
        os.replace(temp, tar_path)
        work = tempfile.mkdtemp(prefix=".layer.", suffix=".partial", dir=layer_dir)
        os.chmod(work, 0o755)          # a layer without a "./" entry keeps this mode
        stats = expand.extract_overlay_layer(tar_path, work)
        os.replace(work, os.path.join(layer_dir, "layer"))
        with self._lock:
            self.whiteouts += stats["whiteouts"]

    def finish(self, config_bytes, results):
        if not results:
            raise InputError("mounts:// needs an image with at least one layer")
        self._hexes = [digest_hex(r.diff_id) for r in results]
        runc.write_bundle_files(self._stage, config_bytes)
        entry = {"Config": "container-config.json",
                 "Layers": ["%s/layer.tar" % name for name in self._hexes],
                 "RepoTags": repo_tags(self.qualified_image, self.tag)}
        write_atomic(os.path.join(self._stage, "manifest.json"), dump_json([entry]))
        write_atomic(os.path.join(self._stage, "catalog.json"),
                     dump_json({self.image: {self.tag: "manifest.json"}}))
        for name in OVERLAY_DIRS:
            os.mkdir(os.path.join(self._stage, name), 0o755)
        # rename(2) replaces an empty directory in one step (no moment without PATH)
        # and fails if something was put in it since begin()
        os.replace(self._stage, self.path)
        self._stage = None
        self._published = True
        lowers = []                             # newest first; a repeated layer once, at
        for name in reversed(self._hexes):      # its topmost place (overlayfs refuses twice)
            if name + "/layer" not in lowers:
                lowers.append(name + "/layer")
        mount_overlay(self.path, lowers)
        LOG.info("Image mounted at %s (overlay); unmount with: umount %s",
                 os.path.join(self.path, "rootfs"), os.path.join(self.path, "rootfs"))

    def abort(self):
        if self._stage:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None
        if self._published:
            rootfs = os.path.join(self.path, "rootfs")
            if os.path.ismount(rootfs):
                subprocess.run(["umount", rootfs], capture_output=True, stdin=subprocess.DEVNULL)
            if os.path.ismount(rootfs):
                LOG.warning("cannot unmount %s; leaving %s in place", rootfs, self.path)
                return
            shutil.rmtree(self.path, ignore_errors=True)
            if self._existed:
                os.mkdir(self.path)
            self._published = False

    def verify(self, full=False):
        errors = []
        for name in BUNDLE_FILES:
            if not os.path.isfile(os.path.join(self.path, name)):
                errors.append("File missing: %s" % os.path.join(self.path, name))
        for name in dict.fromkeys(self._hexes):
            layer_dir = os.path.join(self.path, name)
            if not os.path.isdir(os.path.join(layer_dir, "layer")):
                errors.append("Layer directory missing: %s" % os.path.join(layer_dir, "layer"))
            tar_path = os.path.join(layer_dir, "layer.tar")
            if not os.path.isfile(tar_path):
                errors.append("File missing: %s" % tar_path)
            elif full:
                problem = tarindex.tar_error(tar_path)
                if problem:
                    errors.append("Layer %s is not a valid tar: %s" % (tar_path, problem))
        rootfs = os.path.join(self.path, "rootfs")
        kind = mount_type(rootfs)
        if kind != "overlay":
            errors.append("rootfs is not an overlay mount: %s (%s)"
                          % (rootfs, "not mounted" if kind is None else kind))
        return errors
