"""An image pushed into the embedded registry (occystrap/server) as a tree source, so
api.copy() can run it through filters into any sink (proxy, dockerpush://).

An index pushed there (`skopeo copy --all`, `buildah manifest push --all`) arrives
after its children, which were pushed by digest: child() finds them in the server.
"""
from .. import model
from ..fileslice import read_tail
from ..errors import InputError
from ..model.tree import ImageManifest, parse_node
from .treesource import TreeSource


class PushedImage(TreeSource):
    """An image or index pushed into a RegistryServer, blobs in its store.  platforms
    is what a copy of an index selects: the proxy forwards every platform."""

    def __init__(self, server, name, manifest_bytes, media_type=None, reference="latest",
                 platforms="all"):
        self.server = server
        self.image = self.name = name
        self.tag = reference
        self.platforms = platforms
        self._platform = ("linux", "amd64", "")
        self._view = None
        self._root = self._node(manifest_bytes, media_type or "")

    def _node(self, raw, declared):
        try:
            return parse_node(raw, declared)
        except ValueError as exc:
            raise InputError("pushed manifest of %s: %s" % (self.name, exc)) from None

    def child(self, desc):
        found = self.server.pushed_manifest(self.name, desc.digest)
        if found is None:
            raise InputError("manifest %s of the index %s:%s was not pushed"
                             % (desc.digest, self.name, self.tag))
        node = self._node(found[0], found[1])
        if not isinstance(node, ImageManifest):
            raise InputError("nested manifest list in %s:%s" % (self.name, self.tag))
        return node

    def open_blob(self, desc):
        return self.server.store.open(desc.digest)

    def blob_tail(self, desc, count):
        if desc.size is None or self.server.store.path(desc.digest) is None:
            return None
        with self.server.store.open(desc.digest) as fileobj:
            return read_tail(fileobj, desc.size, count)

    def layer_name(self, desc, diff_id):
        """Layers are named by diff_id, as the save formats dockerpush:// replaces."""
        return model.digest_hex(diff_id or desc.digest)
