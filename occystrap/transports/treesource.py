"""The part every source with stored manifests shares (registry://, ocidir://): picking
one image of the tree for single-image use, and that image as an ImageSource.

A subclass sets `_root` (root()) and implements child(desc) and open_blob(desc).
"""
from .. import model
from ..errors import InputError
from ..jsonparse import parse_json
from ..model import platforms
from ..model.tree import ImageManifest
from .base import ImageSource, LayerRef, wanted_platforms


class TreeSource(ImageSource):
    """A source whose image is a descriptor tree."""
    _root = None

    def __init__(self, uri, options):
        self.platforms = wanted_platforms(uri, options)
        self._platform = (setting(uri, options, "os", "os_", default="linux"),
                          setting(uri, options, "arch", "architecture", default="amd64"),
                          str(setting(uri, options, "variant", default="") or ""))
        self._view = None

    def root(self):
        return self._root

    def child(self, desc):
        raise NotImplementedError

    def open_blob(self, desc):
        raise NotImplementedError

    def layer_name(self, desc, diff_id):
        """The element name of a layer (search and inspect output): its blob digest."""
        return model.digest_hex(desc.digest)

    # -- the selected image (ImageSource) ------------------------------------------------
    @property
    def selected(self):
        """The ImageManifest chosen for single-image use (fetched once: the copier,
        sync's unchanged test and the image's readers all ask for it)."""
        return self.view.node

    @property
    def view(self):
        if self._view is None:
            self._view = ManifestImage(self, self._select(self._root))
        return self._view

    def image_of(self, node):
        """node (an ImageManifest of this source) as an ImageSource."""
        return ManifestImage(self, node)

    def _select(self, node):
        """The image of node for one-image use: node itself, or the index entry that
        --platform (one platform) or --os/--architecture/--variant choose."""
        if isinstance(node, ImageManifest):
            return node
        wanted = self.platforms if isinstance(self.platforms, list) and \
            len(self.platforms) == 1 else [self._platform]
        position = platforms.select_many(node.json, wanted)[0]
        return self.child(node.manifests[position])

    @property
    def manifest_media_type(self):
        return self.selected.media_type

    @property
    def manifest_raw(self):
        return self.selected.raw

    def manifest(self):
        return self.selected.json

    def config_bytes(self):
        return self.view.config_bytes()

    def layers(self):
        return self.view.layers()


class ManifestImage(ImageSource):
    """One image manifest of a tree source, read through the source's open_blob: what
    the per-image copy, check and info take."""

    def __init__(self, source, node):
        self.source = source
        self.node = node
        self.image, self.tag, self.registry = source.image, source.tag, source.registry
        self.local_path = source.local_path
        self.network = source.network
        self.manifest_media_type, self.manifest_raw = node.media_type, node.raw
        self._config = None

    def manifest(self):
        return self.node.json

    def config_bytes(self):
        if self._config is None:
            with self.source.open_blob(self.node.config) as blob:
                self._config = blob.read()
        return self._config

    def layers(self):
        try:
            diff_ids = model.config_diff_ids(parse_json(self.config_bytes()))
        except ValueError as exc:
            raise InputError("image config of %s is not valid: %s"
                             % (self.source.name, exc)) from None
        layers = self.node.layers
        if diff_ids and len(diff_ids) != len(layers):
            raise InputError("%s: config lists %d diff_ids but the manifest %d layers"
                             % (self.source.name, len(diff_ids), len(layers)))
        names = [self.source.layer_name(desc, diff_ids[index] if diff_ids else None)
                 for index, desc in enumerate(layers)]
        return [LayerRef(index=index, name=names[index],
                         open=lambda d=desc: self.source.open_blob(d),
                         diff_id=diff_ids[index] if diff_ids else None, digest=desc.digest,
                         size=desc.size, media_type=desc.media_type or None, descriptor=desc,
                         tail=lambda count, d=desc: self.source.blob_tail(d, count))
                for index, desc in enumerate(layers)]


def setting(uri, options, *names, default=None):
    """The first of names set in the URI query, else in the global options."""
    for name in names:
        if uri.options.get(name) not in (None, ""):
            return uri.options[name]
    for name in names:
        if options.get(name) not in (None, ""):
            return options[name]
    return default
