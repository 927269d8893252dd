"""The descriptor tree of an image as a source stores it: index -> manifests -> blobs.

Every node keeps the raw bytes and media type it was read as, so a copy that changes
nothing writes those bytes again and every digest stays the same (OCI image-spec
"descriptor", "image-index", "manifest").  No I/O here; sources build nodes with
parse_node and the copier walks them.
"""
import dataclasses
import json
from typing import Optional

from . import (DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, check_descriptor,
               sha256_digest)
from ..jsonparse import parse_json

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)


@dataclasses.dataclass(frozen=True)
class Origin:
    """Where a blob can be read on a registry: a sink on the same registry mounts it
    from there instead of uploading (the descriptor says so; a sink never asks the
    source)."""
    host: str
    repository: str


@dataclasses.dataclass(frozen=True)
class Descriptor:
    """A content descriptor: the JSON object as the source wrote it (`raw`, kept whole
    so annotations, urls and platform fields survive a copy) and the fields read."""
    media_type: str
    digest: str
    size: Optional[int]
    raw: dict
    origin: Optional[Origin] = None

    @property
    def platform(self):
        platform = self.raw.get("platform")
        return platform if isinstance(platform, dict) else None


@dataclasses.dataclass(frozen=True)
class ImageManifest:
    """One image: its manifest bytes, config and layers."""
    raw: bytes
    media_type: str
    json: dict
    config: Descriptor
    layers: tuple

    @property
    def digest(self):
        return sha256_digest(self.raw)


@dataclasses.dataclass(frozen=True)
class ImageIndex:
    """A manifest list or OCI index: its bytes and its child descriptors, in order."""
    raw: bytes
    media_type: str
    json: dict
    manifests: tuple

    @property
    def digest(self):
        return sha256_digest(self.raw)


def descriptor(value, origin=None, default_type=""):
    """A Descriptor from a JSON object (check_descriptor's shape rules).

    :raises ValueError: naming the bad field.
    """
    check_descriptor(value)
    return Descriptor(value.get("mediaType") or default_type, value["digest"],
                      value.get("size"), value, origin)


def media_type_of(document, declared=""):
    """A manifest's media type: what the transport declared (Content-Type, an index
    entry) when it is one we know, else the document's mediaType field, else its
    shape (OCI documents may omit mediaType)."""
    if declared in INDEX_TYPES + MANIFEST_TYPES:
        return declared
    if document.get("mediaType") in INDEX_TYPES + MANIFEST_TYPES:
        return document["mediaType"]
    return OCI_INDEX if "manifests" in document else OCI_MANIFEST


def parse_node(raw, declared="", origin=None, document=None):
    """An ImageIndex or ImageManifest from raw bytes (document: them parsed already),
    shape-checked.

    :raises ValueError: not a JSON object, schema 1, or a descriptor that is wrong.
    """
    document = parse_json(raw) if document is None else document
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    if document.get("schemaVersion") == 1:
        raise ValueError("schema 1 manifests are not supported (convert the image first)")
    media_type = media_type_of(document, declared)
    if media_type in INDEX_TYPES:
        children = document.get("manifests")
        if not isinstance(children, list):
            raise ValueError("index has no manifests list")
        return ImageIndex(bytes(raw), media_type, document,
                          tuple(descriptor(d, origin) for d in children))
    if not isinstance(document.get("config"), dict) or not isinstance(
            document.get("layers"), list):
        raise ValueError("manifest has no config or layers")
    return ImageManifest(bytes(raw), media_type, document,
                         descriptor(document["config"], origin),
                         tuple(descriptor(d, origin) for d in document["layers"]))


def platform_name(platform):
    """`os/architecture[/variant]` of a platform object ("unknown" parts where absent)."""
    platform = platform or {}
    parts = [str(platform.get("os") or "unknown"), str(platform.get("architecture")
                                                         or "unknown")]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


# -- rewritten images ------------------------------------------------------------------
from . import (DOCKER_CONFIG, DOCKER_LAYER_GZIP, OCI_CONFIG, OCI_LAYER_GZIP,  # noqa: E402
               OCI_LAYER_TAR, OCI_LAYER_ZSTD, DOCKER_LAYER_TAR)

LAYER_TYPES = {(DOCKER_MANIFEST, "gzip"): DOCKER_LAYER_GZIP,
               (DOCKER_MANIFEST, "none"): DOCKER_LAYER_TAR,
               (OCI_MANIFEST, "gzip"): OCI_LAYER_GZIP,
               (OCI_MANIFEST, "zstd"): OCI_LAYER_ZSTD,
               (OCI_MANIFEST, "none"): OCI_LAYER_TAR}


def manifest_format(source_type, compression):
    """The manifest media type a rewritten image gets: the source's (an OCI manifest
    stays OCI, Docker v2 stays Docker v2; an image with no stored manifest becomes
    Docker v2, as 0.4.17 pushed it), except that zstd layers need OCI."""
    if compression == "zstd" or source_type == OCI_MANIFEST:
        return OCI_MANIFEST
    return DOCKER_MANIFEST


def layer_media_type(source_type, compression):
    """The media type of a layer compressed with compression in that manifest format."""
    return LAYER_TYPES[(manifest_format(source_type, compression), compression)]


# Annotations a rewritten image carries: what it was made from, so a later run (sync,
# on any machine) can tell with one manifest request that it would make it again.
SOURCE_KEY = "org.occystrap.source.digest"      # the source manifest or index
REWRITE_KEY = "org.occystrap.rewrite"           # cache.filters_hash: filters, codec
PLATFORMS_KEY = "org.occystrap.platforms"       # an index's --platform choice


def with_provenance(document, provenance):
    """document with provenance (a dict, or None) merged into its annotations."""
    if provenance:
        document["annotations"] = dict(document.get("annotations") or {}, **provenance)
    return document


def rebuilt_manifest(base, base_type, base_raw, config_bytes, results, compression,
                     provenance=None):
    """(bytes, media type) of the manifest for a rewritten image: base (the source's
    manifest as a dict, or None) with its config and layer descriptors replaced, every
    other field (annotations, subject) kept.  A layer that is the source's blob keeps
    its descriptor whole; a rewritten one loses its annotations (they described the
    old blob).  Unchanged, the source's bytes are returned as they were."""
    media_type = manifest_format(base_type, compression)
    config_digest = sha256_digest(config_bytes)
    old_layers = list(base.get("layers", [])) if base else []
    layers = []
    for position, result in enumerate(results):
        old = old_layers[position] if position < len(old_layers) else None
        if isinstance(old, dict) and old.get("digest") == result.digest:
            layers.append(old)
        else:
            layers.append({"mediaType": result.media_type, "size": result.blob_size,
                           "digest": result.digest})
    config_type = OCI_CONFIG if media_type == OCI_MANIFEST else DOCKER_CONFIG
    if base is None:
        manifest = {"schemaVersion": 2, "mediaType": media_type}
        config = {"mediaType": config_type}
    else:
        manifest = dict(base)
        config = dict(base.get("config") or {})
        if media_type != base_type or "mediaType" in manifest:
            manifest["mediaType"] = media_type
        if media_type != base_type:
            config["mediaType"] = config_type
    config.update(size=len(config_bytes), digest=config_digest)
    manifest["config"] = config
    manifest["layers"] = layers
    with_provenance(manifest, provenance)
    if base is not None and manifest == base and base_raw is not None:
        return base_raw, base_type      # nothing changed: the same bytes, the same digest
    return json.dumps(manifest, separators=(",", ":")).encode(), media_type


def rebuilt_index(index, positions, children, provenance=None):
    """Bytes of index keeping only the entries at positions, each pointing at its new
    child (children: {position: (digest, size, media type)}); order, platform fields
    and annotations are kept.  When nothing changed, the index's own bytes."""
    entries = []
    for position in positions:
        entry = dict(index.manifests[position].raw)
        digest, size, media_type = children[position]
        entry.update(digest=digest, size=size, mediaType=media_type)
        entries.append(entry)
    if entries == [d.raw for d in index.manifests] and not provenance:
        return index.raw
    document = with_provenance(dict(index.json, manifests=entries), provenance)
    return json.dumps(document, separators=(",", ":")).encode()
