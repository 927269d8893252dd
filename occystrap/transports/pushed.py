"""An image pushed into the embedded registry (occystrap/server) as an ImageSource, so
api.copy() can run it through filters into any sink (proxy, dockerpush://)."""
from .. import model
from ..compression import from_media_type
from ..errors import InputError
from ..jsonparse import parse_json
from .base import ImageSource, LayerRef


class PushedImage(ImageSource):
    """An image pushed into a RegistryServer: its manifest plus the blob store's files."""

    def __init__(self, server, name, manifest_bytes, media_type=None, reference="latest"):
        self.server = server
        self.image = name
        self.tag = reference
        try:
            manifest = parse_json(manifest_bytes)
        except ValueError as exc:
            raise InputError("pushed manifest of %s is not valid JSON: %s" % (name, exc)) from None
        if not isinstance(manifest, dict):
            raise InputError("pushed manifest of %s is not a JSON object" % name)
        if "manifests" in manifest:
            raise InputError("manifest lists are not supported (%s:%s)" % (name, reference))
        self._manifest = manifest
        self.raw_manifest = manifest_bytes
        self.media_type = media_type or manifest.get("mediaType") or model.DOCKER_MANIFEST
        self._config = None

    def manifest(self):
        return self._manifest

    def config_bytes(self):
        if self._config is None:
            with self.server.store.open(self._manifest["config"]["digest"]) as f:
                self._config = f.read()
        return self._config

    def layers(self):
        try:
            diff_ids = model.config_diff_ids(parse_json(self.config_bytes()))
        except ValueError as exc:
            raise InputError("image config of %s is not valid: %s" % (self.image, exc)) from None
        layers = self._manifest.get("layers") or []
        if diff_ids and len(diff_ids) != len(layers):
            raise InputError("%s: config lists %d diff_ids but the manifest %d layers"
                             % (self.image, len(diff_ids), len(layers)))
        refs = []
        store = self.server.store
        for index, desc in enumerate(layers):
            digest = desc["digest"]
            diff_id = diff_ids[index] if diff_ids else None
            media_type = desc.get("mediaType")
            refs.append(LayerRef(
                index=index, name=model.digest_hex(diff_id or digest),
                open=lambda d=digest: store.open(d), diff_id=diff_id, digest=digest,
                size=store.size(digest) or desc.get("size"), media_type=media_type,
                compression=from_media_type(media_type)))
        return refs
