"""registry:// source: pull an image over the OCI distribution API (0.4.17 B.8/B.9, fixed).

Manifests are dispatched on the media type with parameters stripped (0.4.17 needed an
exact Content-Type); lists and indexes select a platform (platforms.py); a manifest is
checked against the digest it was pulled by, or by tag against the registry's
Docker-Content-Digest; the config and every blob are verified against their digests
while they stream, and a blob cut off mid-transfer resumes with a Range request.
"""
import hashlib
import io

import urllib3

from ... import model
from ...errors import InputError
from ...jsonparse import parse_json
from ..base import ImageSource, LayerRef
from . import platforms
from .client import RegistryError
from .connect import SOURCE_ALIASES, SOURCE_OPTIONS, connect, setting

MANIFEST_TYPES = [model.OCI_INDEX, model.DOCKER_LIST, model.OCI_MANIFEST, model.DOCKER_MANIFEST]
LIST_TYPES = (model.OCI_INDEX, model.DOCKER_LIST)
CHUNK = 1 << 20


def checked_manifest(response, reference, image):
    """The manifest body of response, once it hashes to the digest it was asked by, or
    (by tag) to the registry's Docker-Content-Digest when it sent a sha256 one
    (distribution spec "Pulling manifests"); InputError naming image otherwise."""
    raw = response.data
    if reference.startswith("sha256:") and model.sha256_digest(raw) != reference:
        raise InputError("manifest %s of %s does not match its digest" % (reference, image))
    claimed = (response.headers.get("Docker-Content-Digest") or "").strip()
    if claimed.startswith("sha256:") and model.sha256_digest(raw) != claimed:
        raise InputError("manifest of %s does not match the registry's "
                         "Docker-Content-Digest %s (got %s)"
                         % (image, claimed, model.sha256_digest(raw)))
    return raw


class RegistrySource(ImageSource):
    OPTIONS = SOURCE_OPTIONS
    OPTION_ALIASES = SOURCE_ALIASES
    network = True
    thread_safe_blobs = True

    def __init__(self, uri, options):
        self.ref, self.client = connect(uri, options, "src")
        self.image, self.registry = self.ref.repository, self.ref.host
        self.tag = self.ref.reference
        self.scope = "repository:%s:pull" % self.ref.repository
        self._platform = (setting(uri, options, "os", "os_", default="linux"),
                          setting(uri, options, "arch", "architecture", default="amd64"),
                          str(setting(uri, options, "variant", default="") or ""))
        self.index = None
        self._manifest, self.raw_manifest, self.media_type = self._fetch_manifest()
        self._config = None

    @classmethod
    def from_uri(cls, uri, options):
        return cls(uri, options)

    def close(self):
        self.client.close()

    # -- manifests -------------------------------------------------------------------
    def _get_manifest(self, reference):
        path = "/v2/%s/manifests/%s" % (self.ref.repository, reference)
        try:
            response = self.client.request("GET", path, scope=self.scope,
                                           headers={"Accept": ", ".join(MANIFEST_TYPES)})
        except RegistryError as exc:
            if exc.status == 404:
                raise InputError("Image not found: %s" % self.ref) from None
            raise
        raw = checked_manifest(response, reference, self.ref)
        try:
            manifest = parse_json(raw)
        except ValueError as exc:
            raise InputError("manifest of %s is not valid JSON: %s" % (self.ref, exc)) from None
        if not isinstance(manifest, dict):
            raise InputError("manifest of %s is not a JSON object" % self.ref)
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        if media_type not in MANIFEST_TYPES:
            media_type = manifest.get("mediaType") or (
                model.OCI_INDEX if "manifests" in manifest else model.OCI_MANIFEST)
        if manifest.get("schemaVersion") == 1 or media_type not in MANIFEST_TYPES:
            raise InputError("Unsupported manifest type %s for %s (schema 1 images must be "
                             "converted first)" % (media_type, self.ref))
        return manifest, raw, media_type

    def _fetch_manifest(self):
        manifest, raw, media_type = self._get_manifest(self.ref.reference)
        if media_type in LIST_TYPES:
            self.index = manifest
            chosen = platforms.select(manifest, *self._platform)
            manifest, raw, media_type = self._get_manifest(chosen["digest"])
            if media_type in LIST_TYPES:
                raise InputError("nested manifest list in %s" % self.ref)
        if not isinstance(manifest.get("config"), dict) or not isinstance(
                manifest.get("layers"), list):
            raise InputError("manifest of %s has no config or layers" % self.ref)
        try:
            for desc in [manifest["config"]] + manifest["layers"]:
                model.check_descriptor(desc)
        except ValueError as exc:
            raise InputError("manifest of %s: %s" % (self.ref, exc)) from None
        return manifest, raw, media_type

    def manifest(self):
        return self._manifest

    # -- blobs -----------------------------------------------------------------------
    def _blob_url(self, digest):
        return "/v2/%s/blobs/%s" % (self.ref.repository, digest)

    def config_bytes(self):
        if self._config is None:
            desc = self._manifest["config"]
            with self.open_blob(desc["digest"], desc.get("size")) as blob:
                self._config = blob.read()
        return self._config

    def open_blob(self, digest, size=None):
        """A file object streaming a blob, verifying size and digest at EOF."""
        return BlobReader(self.client, self._blob_url(digest), self.scope, digest, size)

    def layers(self):
        try:
            diff_ids = model.config_diff_ids(parse_json(self.config_bytes()))
        except ValueError as exc:
            raise InputError("image config of %s is not valid: %s" % (self.ref, exc)) from None
        layers = self._manifest["layers"]
        if diff_ids and len(diff_ids) != len(layers):
            raise InputError("%s: config lists %d diff_ids but the manifest %d layers"
                             % (self.ref, len(diff_ids), len(layers)))
        refs = []
        for index, desc in enumerate(layers):
            media_type = desc.get("mediaType")
            refs.append(LayerRef(
                index=index, name=model.digest_hex(desc["digest"]),
                open=lambda d=desc: self.open_blob(d["digest"], d.get("size")),
                diff_id=diff_ids[index] if diff_ids else None, digest=desc["digest"],
                size=desc.get("size"), media_type=media_type))
        return refs


class BlobReader(io.RawIOBase):
    """Streams one blob; checks its digest and size at the end; resumes cut transfers."""

    def __init__(self, client, url, scope, digest, size):
        super().__init__()
        if not digest.startswith("sha256:"):
            raise InputError("unsupported digest algorithm: %s" % digest)
        self._client, self._url, self._scope = client, url, scope
        self._digest, self._size = digest, size
        self._hash = hashlib.sha256()
        self._pos = 0
        self._resumes = 0
        self._response = self._open(0)

    def _open(self, start):
        headers = {"Range": "bytes=%d-" % start} if start else None
        try:
            response = self._client.request("GET", self._url, scope=self._scope,
                                            headers=headers, stream=True, ok=(200, 206))
        except RegistryError as exc:
            if exc.status == 404:
                raise InputError("blob %s not found" % self._digest) from None
            raise
        if start and response.status == 200:        # no Range support: skip what we have
            skip = start
            while skip:
                piece = response.read(min(skip, CHUNK))
                if not piece:
                    break
                skip -= len(piece)
        return response

    def readable(self):
        return True

    def read(self, size=-1):
        if size is None or size < 0:            # read to the end, verifying the digest
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        data = bytearray()
        while len(data) < size:
            piece = self._read_some(size - len(data))
            if not piece:
                break
            data += piece
        if data:
            return bytes(data)
        if self._size is not None and self._pos != self._size:
            raise InputError("blob %s is truncated: %d of %d bytes"
                             % (self._digest, self._pos, self._size))
        if "sha256:" + self._hash.hexdigest() != self._digest:
            raise InputError("blob %s failed digest verification (got sha256:%s)"
                             % (self._digest, self._hash.hexdigest()))
        return b""

    def _read_some(self, size):
        """What has arrived, up to size bytes, resuming after a cut transfer.  read1,
        not read: urllib3's read(n) drops the bytes it had when the body ends early, so
        the resume would start at the last whole chunk instead of at the cut."""
        while True:
            try:
                data = self._response.read1(size)
                break
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError,
                    OSError) as exc:
                self._response.release_conn()
                self._resumes += 1
                if self._resumes > self._client.retries:
                    raise InputError("download of %s failed: %s" % (self._digest, exc)) from None
                self._response = self._open(self._pos)
        if data:
            self._hash.update(data)
            self._pos += len(data)
            if self._size is not None and self._pos > self._size:
                raise InputError("blob %s is larger than its descriptor says" % self._digest)
        return data

    def close(self):
        if not self.closed:
            self._response.release_conn()
            self._response.close()
        super().close()
