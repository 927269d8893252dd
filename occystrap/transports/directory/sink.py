"""dir:// sink (0.4.17 B.6): `PATH/<layer>/layer.tar`, the config, a manifest, catalog.json.

Fixes over 0.4.17: the config is stored byte for byte (0.4.17 re-serialized it, so it
no longer hashed to its name); layers are named by diff_id, never by an empty string;
expand applies whiteouts exactly (E.2 #3) and refuses paths that leave the root.
Several images may share one directory: layers dedupe by name and catalog.json is
merged under a file lock.

expand=true builds the tree in `.occystrap-expand-*` and exchanges it with the old one
in one step (outpath.replace_tree), so PATH/<manifest> is always one whole tree.  A
staging tree is flocked while its run lives; one nobody holds is a killed run's
leftover, and the next expanding run into PATH deletes it.
"""
import fcntl
import os
import shutil
import tempfile

from ... import tarindex
from ...atomicfile import dump_json, locked, write_atomic
from ...rootfs.background import BackgroundExpander
from ...errors import OutputError
from ...jsonparse import parse_json
from ...model import digest_hex, repo_tags, sha256_digest
from ...uri import boolean
from ..base import ImageSink
from ..filewriter import FileLayerWriter
from ..outpath import replace_tree

STAGING_PREFIX = ".occystrap-expand-"


def _read_or_none(path):
    try:
        with open(path, "rb") as fileobj:
            return fileobj.read()
    except FileNotFoundError:
        return None


def _claim(path):
    """An fd holding path's flock, or None when a live run holds it.  The kernel drops
    the lock when the holder dies, even by SIGKILL."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _dead_staging(directory):
    """(path, fd holding its flock) of each staging tree in directory no live run holds."""
    claims = []
    for name in os.listdir(directory):
        if name.startswith(STAGING_PREFIX):
            path = os.path.join(directory, name)
            fd = _claim(path)
            if fd is not None:
                claims.append((path, fd))
    return claims


def _remove_claimed(claims):
    for path, fd in claims:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


class DirectorySink(ImageSink):
    OPTIONS = {"unique_names": boolean, "expand": boolean}
    def __init__(self, path, unique_names=False, expand=False):
        self.path = os.path.abspath(path)
        self.unique_names = bool(unique_names)
        self.expand = bool(expand)
        self._created_root = False
        self._created = []          # files this run made (removed again on abort)
        self._written = {}          # path -> size, for verify
        self._staging = None        # expand: the tree being built, renamed in at the end
        self._staging_lock = None   # fd holding the staging tree's flock
        self._expander = None

    @classmethod
    def from_uri(cls, uri, options):
        return cls(uri.path, unique_names=uri.options.get("unique_names", False),
                   expand=uri.options.get("expand", False))

    def begin(self, source):
        self.image, self.tag = source.image, source.tag     # catalog key, manifest name
        self.qualified_image = source.qualified_image          # RepoTags
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise OutputError("Output path exists and is not a directory: %s" % self.path)
        if not os.path.isdir(self.path):
            try:
                os.makedirs(self.path)
            except OSError as exc:
                raise OutputError("cannot create %s: %s" % (self.path, exc.strerror)) from None
            self._created_root = True
        if self.expand:
            self._begin_expand()

    @property
    def _expanded_path(self):
        return os.path.join(self.path, self.manifest_name[:-len(".json")])

    def _begin_expand(self):
        """Check the tree's place, delete dead runs' staging trees, claim a new one (under
        PATH's lock, so no other run takes it for a leftover before it is flocked)."""
        target = self._expanded_path
        if os.path.islink(target) or (os.path.lexists(target) and not os.path.isdir(target)):
            raise OutputError("Expanded tree path exists and is not a directory: %s" % target)
        with locked(self.path):
            leftovers = _dead_staging(self.path)
            self._staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.path)
            self._staging_lock = _claim(self._staging)
        _remove_claimed(leftovers)
        os.chmod(self._staging, 0o755)  # mkdtemp makes it 0700; an image's "./" wins
        self._expander = BackgroundExpander(self._staging, self.helpers)

    def _layer_path(self, result):
        return os.path.join(self.path, digest_hex(result.diff_id), "layer.tar")

    def _committed(self, result, target, created):
        if created:
            self._created.append(target)
            self._written[target] = result.size
        if self._expander is not None:
            self._expander.add(result.index, target)

    def open_layer(self, ref):
        return FileLayerWriter(self.path, self._layer_path, self._committed)

    @property
    def manifest_name(self):
        if not self.unique_names:
            return "manifest.json"
        return "manifest-%s-%s.json" % (self.image.replace("/", "_"), self.tag.replace("/", "_"))

    def finish(self, config_bytes, results):
        """Write the config, expand, then publish manifest and catalog last: a failure
        before that point leaves an existing directory's images as they were."""
        config_name = digest_hex(sha256_digest(config_bytes)) + ".json"
        config_path = os.path.join(self.path, config_name)
        existing = _read_or_none(config_path)
        if existing != config_bytes:
            # 0.4.17 stored a re-serialized config under the original digest's name:
            # replace it (atomically) with the bytes that name stands for.
            write_atomic(config_path, config_bytes)
            if existing is None:
                self._created.append(config_path)
        self._written[config_path] = len(config_bytes)
        if self.expand:
            self._expander.finish(len(results))
            self._expander = None
        entry = {"Config": config_name,
                 "Layers": ["%s/layer.tar" % digest_hex(r.diff_id) for r in results],
                 "RepoTags": repo_tags(self.qualified_image, self.tag)}
        if self.unique_names:
            entry["ImageName"] = self.image
        if self.expand:
            with locked(self.path):
                # from here _staging is what is left to delete: the replaced tree or None
                self._staging = replace_tree(self._staging, self._expanded_path,
                                             self._staging + "-old")
            if self._staging is not None:
                shutil.rmtree(self._staging, ignore_errors=True)
                self._staging = None
            self._release_staging()
        write_atomic(os.path.join(self.path, self.manifest_name), dump_json([entry]))
        self._update_catalog()

    def _release_staging(self):
        if self._staging_lock is not None:
            os.close(self._staging_lock)
            self._staging_lock = None

    def _update_catalog(self):
        with locked(self.path):
            path = os.path.join(self.path, "catalog.json")
            catalog = {}
            if os.path.exists(path):
                try:
                    with open(path, "rb") as fileobj:
                        catalog = parse_json(fileobj.read())
                except ValueError:
                    catalog = {}
            catalog.setdefault(self.image, {})[self.tag] = self.manifest_name
            write_atomic(path, dump_json(catalog))

    def abort(self):
        if self._expander is not None:
            self._expander.cancel()
            self._expander = None
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        self._release_staging()
        if self._created_root:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        for path in self._created:
            if os.path.exists(path):
                os.unlink(path)
                parent = os.path.dirname(path)
                if parent != self.path and not os.listdir(parent):
                    os.rmdir(parent)

    def verify(self, full=False):
        errors = []
        manifest = os.path.join(self.path, self.manifest_name)
        if not os.path.exists(manifest):
            errors.append("Manifest file missing: %s" % manifest)
        for path, size in self._written.items():
            if not os.path.exists(path):
                errors.append("File missing: %s" % path)
            elif os.path.getsize(path) != size:
                errors.append("Layer size mismatch for %s: expected %d, got %d"
                              % (path, size, os.path.getsize(path)))
            elif full and path.endswith("layer.tar"):
                problem = tarindex.tar_error(path)
                if problem:
                    errors.append("Layer %s is not a valid tar: %s" % (path, problem))
        return errors
