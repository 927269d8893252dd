"""ocidir:// and oci-archive:// sources: an OCI image layout, as a directory or a tar.

The tag's index.json entry is the root of the descriptor tree (an index or one
manifest), so a copy to a sink that stores manifests is byte-exact (imageset.py).
Every blob is read by its digest only (a digest that is not `alg:<hex>` names no
file) and checked against its size and digest as it streams; a member or symlink
leading out of the layout is refused.
"""
import os
import posixpath

from ... import tarindex
from ...errors import InputError
from ...fileslice import FileSlice, read_tail
from ...model.platforms import platform_option
from ...model.tree import ImageManifest, parse_node
from ...uri import text
from ..._native._common import AREGTYPE, REGTYPE, TarError
from ..treesource import TreeSource
from .layout import (INDEX_FILE, LAYOUT_FILE, VerifiedReader, blob_name, find_entry,
                     layout_index, ref_name, split_path)

MAX_MANIFEST = 4 << 20      # what registries accept; a bigger "manifest" is a wrong type


class LayoutSource(TreeSource):
    """The tree of one tag of a layout; subclasses say how a file of it is opened."""
    OPTIONS = {"os": text, "arch": text, "variant": text, "platform": platform_option}
    OPTION_ALIASES = {"architecture": "arch"}
    scheme = None

    def __init__(self, uri, options):
        super().__init__(uri, options)
        self.path, wanted = split_path(uri.path)
        self.local_path = os.path.realpath(self.path)
        self.name = "%s://%s" % (self.scheme, self.path)
        self._check_exists()
        if not self._exists(LAYOUT_FILE):
            raise InputError("%s is not an OCI image layout (no %s)" % (self.name, LAYOUT_FILE))
        with self._open(INDEX_FILE) as index:
            raw = b"".join(iter(lambda: index.read(1 << 16), b""))
        document = layout_index(raw, self.name)
        entry = find_entry(document, wanted, self.name)
        self.tag = wanted or ref_name(entry) or "latest"
        self.image = os.path.basename(self.local_path.rstrip("/")) or "unknown"
        self.name = "%s://%s:%s" % (self.scheme, self.path, self.tag)
        self._root = self._node(entry.get("digest"), entry.get("size"),
                                entry.get("mediaType") or "")

    @classmethod
    def from_uri(cls, uri, options):
        return cls(uri, options)

    # -- the descriptor tree -----------------------------------------------------------
    def child(self, desc):
        """The image manifest an index entry points to (nested indexes are refused)."""
        node = self._node(desc.digest, desc.size, desc.media_type)
        if not isinstance(node, ImageManifest):
            raise InputError("nested image index in %s" % self.name)
        return node

    def _node(self, digest, size, declared):
        if size is not None and size > MAX_MANIFEST:
            raise InputError("%s: manifest %s is %d bytes, more than a manifest may be"
                             % (self.name, digest, size))
        with self._blob(digest, size) as blob:
            raw = blob.read()
        try:
            return parse_node(raw, declared)
        except ValueError as exc:
            raise InputError("%s: manifest %s: %s" % (self.name, digest, exc)) from None

    def open_blob(self, desc):
        """A file object of the blob, checked against size and digest at EOF."""
        return self._blob(desc.digest, desc.size)

    def blob_tail(self, desc, count):
        """A seek to the end of the blob's file (or archive member)."""
        name = blob_name(desc.digest)
        if desc.size is None or not self._exists(name):
            return None
        with self._open(name) as fileobj:
            return read_tail(fileobj, desc.size, count)

    def _blob(self, digest, size):
        name = blob_name(digest)
        if not self._exists(name):
            raise InputError("%s: blob %s is missing" % (self.name, digest))
        return VerifiedReader(self._open(name), digest, size, self.name)

    # -- files of the layout ---------------------------------------------------------------
    def _check_exists(self):
        raise NotImplementedError

    def _exists(self, name):
        raise NotImplementedError

    def _open(self, name):
        raise NotImplementedError


class OcidirSource(LayoutSource):
    """A layout directory (`skopeo copy ... oci:DIR:TAG`, buildah push, umoci)."""
    scheme = "ocidir"

    def _check_exists(self):
        if not os.path.isdir(self.local_path):
            raise InputError("No such directory: %s" % self.path)

    def _file(self, name):
        """The real path of the layout's file name, refused when a symlink leads out."""
        path = os.path.realpath(os.path.join(self.local_path, name))
        if not path.startswith(self.local_path.rstrip("/") + "/"):
            raise InputError("%s: %s leads outside the layout" % (self.name, name))
        return path

    def _exists(self, name):
        return os.path.isfile(self._file(name))

    def _open(self, name):
        try:
            return open(self._file(name), "rb", buffering=0)
        except FileNotFoundError:
            raise InputError("%s: %s is missing" % (self.name, name)) from None
        except OSError as exc:
            raise InputError("%s: cannot read %s: %s" % (self.name, name, exc.strerror)) \
                from None


class ArchiveSource(LayoutSource):
    """A tar of a layout (`skopeo copy ... oci-archive:FILE:TAG`), read in place: its
    members are indexed once and each blob is a slice of the file."""
    scheme = "oci-archive"

    def _check_exists(self):
        if not os.path.isfile(self.local_path):
            raise InputError("No such file: %s" % self.path)
        self._members = {}
        try:
            with open(self.local_path, "rb") as fileobj:
                for member in tarindex.iter_members(fileobj):
                    name = posixpath.normpath(member.name.decode("utf-8", "surrogateescape"))
                    self._members[name.lstrip("/")] = member
        except TarError as exc:
            raise InputError("%s is not a valid tar: %s" % (self.path, exc)) from None
        except OSError as exc:
            raise InputError("cannot read %s: %s" % (self.path, exc.strerror)) from None

    def _exists(self, name):
        member = self._members.get(name)
        return member is not None and member.type in (REGTYPE, AREGTYPE)

    def _open(self, name):
        if not self._exists(name):
            raise InputError("%s: %s is missing (or not a regular file)" % (self.name, name))
        member = self._members[name]
        return FileSlice(self.local_path, member.offset, member.size)
