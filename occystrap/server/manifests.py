"""Manifests: what a pushed manifest must be to be accepted, and the handler's manifest
and tags endpoints."""
import json
import logging

from .. import model
from ..jsonparse import parse_json
from .protocol import DIGEST_RE, RegistryHTTPError, check_reference

LOG = logging.getLogger(__name__)

MAX_MANIFEST = 4 << 20                  # distribution's limit for a manifest body
LIST_TYPES = (model.OCI_INDEX, model.DOCKER_LIST)
MANIFEST_TYPES = (model.DOCKER_MANIFEST, model.OCI_MANIFEST)


def check_manifest(body, reference, header_type, blob_known, manifest_known=None):
    """Refuse (RegistryHTTPError) what cannot be an image: not JSON, not schema 2, a bad
    or unknown blob (blob_known(digest)), an index naming a manifest not pushed first
    (manifest_known(digest); without it, indexes are refused), a digest reference it
    does not match.  Returns (media_type, digest)."""
    try:
        manifest = parse_json(body)
    except ValueError as exc:       # also a document nested too deeply (jsonparse)
        raise RegistryHTTPError(400, "MANIFEST_INVALID",
                                "manifest is not valid JSON: %s" % exc) from None
    if not isinstance(manifest, dict):
        raise RegistryHTTPError(400, "MANIFEST_INVALID", "manifest is not a JSON object")
    media_type = (header_type if header_type in MANIFEST_TYPES + LIST_TYPES
                  else manifest.get("mediaType") or header_type or model.DOCKER_MANIFEST)
    is_index = "manifests" in manifest or media_type in LIST_TYPES
    if is_index and manifest_known is None:
        raise RegistryHTTPError(400, "MANIFEST_INVALID",
                                "manifest lists and image indexes are not supported: "
                                "push a single-platform image (e.g. docker push, or "
                                "skopeo copy without --all)")
    if manifest.get("schemaVersion") != 2:
        raise RegistryHTTPError(400, "MANIFEST_INVALID", "only schema 2 manifests are "
                                "supported (got schemaVersion %r)"
                                % manifest.get("schemaVersion"))
    if is_index:
        _check_index(manifest, manifest_known)
        return _checked_digest(body, reference, media_type)
    config = manifest.get("config")
    layers = manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise RegistryHTTPError(400, "MANIFEST_INVALID", "manifest has no config or layers")
    for desc in [config] + layers:
        digest = desc.get("digest") if isinstance(desc, dict) else None
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise RegistryHTTPError(400, "MANIFEST_INVALID", "bad descriptor digest %r"
                                    % (digest,))
        if not blob_known(digest):
            raise RegistryHTTPError(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to "
                                    "registry", detail={"digest": digest})
    return _checked_digest(body, reference, media_type)


def _check_index(index, manifest_known):
    """Every entry of an index names a manifest pushed here before it (clients push
    the children by digest, then the index)."""
    children = index.get("manifests")
    if not isinstance(children, list) or not children:
        raise RegistryHTTPError(400, "MANIFEST_INVALID", "index lists no manifests")
    for desc in children:
        digest = desc.get("digest") if isinstance(desc, dict) else None
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise RegistryHTTPError(400, "MANIFEST_INVALID", "bad descriptor digest %r"
                                    % (digest,))
        if not manifest_known(digest):
            raise RegistryHTTPError(400, "MANIFEST_UNKNOWN", "the index names a manifest "
                                    "not pushed first", detail={"digest": digest})


def _checked_digest(body, reference, media_type):
    digest = model.sha256_digest(body)
    if ":" in reference and reference != digest:
        raise RegistryHTTPError(400, "DIGEST_INVALID", "manifest digest %s does not match "
                                "the reference" % digest, detail={"digest": reference})
    return media_type, digest


class ManifestRoutes:
    """The /v2/<name>/manifests/<ref> and /tags/list endpoints, mixed into the Handler."""

    def _manifest_get(self, name, reference):
        check_reference(reference)
        # Clients (dockerd) send one Accept header per media type: join them all.
        accept = ", ".join(self.headers.get_all("Accept") or ())
        found = self.registry.find_manifest(name, reference, accept, self.command)
        if found is None:
            raise RegistryHTTPError(404, "MANIFEST_UNKNOWN", "manifest unknown",
                                    detail={"name": name, "reference": reference})
        body, media_type = found
        digest = model.sha256_digest(body)
        LOG.debug("manifest %s %s:%s -> %s (%s)", self.command, name, reference, digest,
                  media_type)
        self._send(200, body if self.command == "GET" else b"",
                   headers={"Docker-Content-Digest": digest, "ETag": '"%s"' % digest},
                   content_type=media_type, length=len(body))

    _manifest_head = _manifest_get

    def _manifest_put(self, name, reference):
        check_reference(reference)
        body = self._read_body(MAX_MANIFEST)
        header_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        digest = self.registry.put_manifest(name, reference, body, header_type)
        self._send(201, b"", headers={"Location": "/v2/%s/manifests/%s" % (name, digest),
                                      "Docker-Content-Digest": digest})

    def _manifest_delete(self, name, reference):
        raise RegistryHTTPError(405, "UNSUPPORTED", "deleting manifests is not supported")

    def _tags_get(self, name):
        tags = self.registry.tags(name)
        if not tags:
            raise RegistryHTTPError(404, "NAME_UNKNOWN", "repository name not known to "
                                    "registry", detail={"name": name})
        self._send(200, json.dumps({"name": name, "tags": tags}).encode())
