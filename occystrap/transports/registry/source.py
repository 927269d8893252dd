"""registry:// source: pull an image over the OCI distribution API (0.4.17 B.8/B.9, fixed).

Manifests are dispatched on the media type with parameters stripped (0.4.17 needed an
exact Content-Type); lists and indexes select a platform (platforms.py); a manifest is
checked against the digest it was pulled by, or by tag against the registry's
Docker-Content-Digest; the config and every blob are verified against their digests
while they stream, and a blob cut off mid-transfer resumes with a Range request.
"""
import io

import urllib3

from ... import model
from ...errors import InputError
from ...jsonparse import parse_json
from ...model.tree import ImageManifest, Origin, parse_node
from ..blobcheck import BlobCheck
from ..treesource import TreeSource
from .client import RegistryError
from .connect import SOURCE_ALIASES, SOURCE_OPTIONS, connect
from .listing import list_tags

MANIFEST_TYPES = [model.OCI_INDEX, model.DOCKER_LIST, model.OCI_MANIFEST, model.DOCKER_MANIFEST]
CHUNK = 1 << 20
MAX_UNRANGED_TAIL = 1 << 20     # a blob a registry without Range support is read whole for


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


class RegistrySource(TreeSource):
    """The image at a registry reference: its descriptor tree (root(), child()) and,
    for the per-image interface, the one image --platform or --os/--architecture/
    --variant select from an index."""
    OPTIONS = SOURCE_OPTIONS
    OPTION_ALIASES = SOURCE_ALIASES
    network = True

    def __init__(self, uri, options):
        super().__init__(uri, options)
        self.ref, self.client = connect(uri, options, "src")
        self.image, self.registry = self.ref.repository, self.ref.host
        self.tag = self.ref.reference
        self.scope = "repository:%s:pull" % self.ref.repository
        self.origin = Origin(self.ref.api_host, self.ref.repository)
        self.name = str(self.ref)
        self._root = self._get_node(self.ref.reference)

    @classmethod
    def from_uri(cls, uri, options):
        return cls(uri, options)

    def close(self):
        self.client.close()

    # -- the descriptor tree -----------------------------------------------------------
    def root(self):
        return self._root

    def child(self, desc):
        """The image manifest an index entry points to (nested indexes are refused)."""
        node = self._get_node(desc.digest, desc.media_type)
        if not isinstance(node, ImageManifest):
            raise InputError("nested manifest list in %s" % self.ref)
        return node

    def _get_node(self, reference, declared=""):
        path = "/v2/%s/manifests/%s" % (self.ref.repository, reference)
        try:
            response = self.client.request("GET", path, scope=self.scope,
                                           headers={"Accept": ", ".join(MANIFEST_TYPES)})
        except RegistryError as exc:
            if exc.status == 404:
                raise InputError("Image not found: %s" % self.ref) from None
            raise
        raw = checked_manifest(response, reference, self.ref)
        content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            document = parse_json(raw)
        except ValueError as exc:
            raise InputError("manifest of %s is not valid JSON: %s" % (self.ref, exc)) from None
        if not isinstance(document, dict):
            raise InputError("manifest of %s is not a JSON object" % self.ref)
        try:
            return parse_node(raw, content_type if content_type in MANIFEST_TYPES
                              else declared, self.origin, document)
        except ValueError as exc:
            raise InputError("manifest of %s: %s" % (self.ref, exc)) from None

    def node_at(self, reference):
        """The index or manifest stored under reference (a tag or digest)."""
        return self._get_node(reference)

    def tags(self):
        """Every tag of the repository, following the paginated tags/list (Link)."""
        return list_tags(self.client, self.ref.repository)

    def referrers(self, digest):
        """[(tag or None, node)] of what refers to digest: the OCI 1.1 referrers API
        (each referrer by digest), and the tags of the fallback schema, `sha256-<hex>`
        (an index of referrers) and cosign's `sha256-<hex>.sig/.att/.sbom`."""
        found = []
        try:
            response = self.client.request(
                "GET", "/v2/%s/referrers/%s" % (self.ref.repository, digest),
                scope=self.scope, headers={"Accept": model.OCI_INDEX})
            listed = parse_node(response.data, model.OCI_INDEX)
            found += [(None, self.node_at(desc.digest)) for desc in listed.manifests]
        except RegistryError as exc:
            if exc.status not in (404, 405):       # no referrers API (distribution 2.8)
                raise
        except ValueError as exc:
            raise InputError("referrers of %s: %s" % (digest, exc)) from None
        prefix = "sha256-" + model.digest_hex(digest)
        found += [(tag, self.node_at(tag)) for tag in sorted(self.tags())
                  if tag == prefix or tag.startswith(prefix + ".")]
        return found

    def open_blob(self, desc):
        """A file object streaming a blob, verifying size and digest at EOF."""
        return BlobReader(self.client, self._blob_url(desc.digest), self.scope, desc.digest,
                          desc.size)

    def blob_tail(self, desc, count):
        """One `Range: bytes=-count` GET, never retried.  A registry that sends the whole
        blob instead (200) is read to the end only when the blob is small; a refusal or
        an error is None."""
        if not desc.size or count > desc.size:
            return None
        try:
            response = self.client.request("GET", self._blob_url(desc.digest), scope=self.scope,
                                           headers={"Range": "bytes=-%d" % count},
                                           stream=True, ok=(200, 206), retry=False)
        except RegistryError:           # not worth a retry: the Summary falls back
            return None
        tail = _tail_of(response, desc.size, count)
        if tail is None:
            response.close()            # a body left unread: the connection goes with it
        response.release_conn()
        return tail

    def _blob_url(self, digest):
        return "/v2/%s/blobs/%s" % (self.ref.repository, digest)


def _tail_of(response, size, count):
    """The last count bytes of a blob of size bytes from a ranged GET's response."""
    if response.status == 206:
        wanted = "bytes %d-%d/%d" % (size - count, size - 1, size)
        if response.headers.get("Content-Range", "").strip() != wanted:
            return None
    elif size > MAX_UNRANGED_TAIL:
        return None                 # the whole blob came: not worth reading for a count
    try:
        data = b"".join(iter(lambda: response.read(CHUNK), b""))
    except (urllib3.exceptions.HTTPError, OSError):
        return None
    return data[-count:] if len(data) == (count if response.status == 206 else size) \
        else None


class BlobReader(io.RawIOBase):
    """Streams one blob; checks its digest and size at the end; resumes cut transfers."""

    def __init__(self, client, url, scope, digest, size):
        super().__init__()
        self._client, self._url, self._scope = client, url, scope
        self._digest = digest
        self._check = BlobCheck(digest, size)
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
        self._check.finish()
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
                self._response = self._open(self._check.pos)
        if data:
            self._check.update(data)
        return data

    def close(self):
        if not self.closed:
            self._response.release_conn()
            self._response.close()
        super().close()
