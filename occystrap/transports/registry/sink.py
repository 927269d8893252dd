"""registry:// sink: push an image over the OCI distribution API (0.4.17 B.10, fixed).

Each layer is compressed while it streams and uploaded as it is produced, in one
chunked-encoding PATCH (no whole layer in RAM, 0.4.17 held two copies); blobs the
registry already has are skipped with a HEAD, or mounted from the repository a descriptor names
on the same registry (try_reuse, also what --layer-cache hits use, cache.py).  A byte-
exact copy puts blobs and manifests as stored (put_blob, put_manifest, put_index); a
rewritten image keeps the source's manifest format, OCI for zstd (`tar+zstd`, which
skopeo and containerd accept; 0.4.17's Docker zstd type was refused, E.2 #6).  A failed
PATCH or PUT resumes from the registry's upload status, or the layer is made again
(_Upload).  The tag is written last, so a failed push
never leaves a half-pushed tag.
"""
import collections
import queue
import re
import threading
import urllib.parse

from ... import model
from ...compression import check_level
from ...errors import OutputError
from ...jsonparse import parse_json
from ...model.tree import Origin, layer_media_type, rebuilt_manifest
from ..base import ImageSink, LayerWriter, RestartLayer
from .client import RegistryError
from .connect import SINK_OPTIONS, connect, setting

CHUNK = 1 << 20                     # bytes per queued piece of a streamed upload
QUEUE_DEPTH = 4                     # pieces in flight per layer: bounded memory
WINDOW = 8 << 20                    # bytes kept to resend after a failed upload request

class _Upload(LayerWriter):
    """One blob upload.  Small blobs go up with the final PUT; larger ones stream as a
    single chunked-encoding PATCH fed by a sender thread through a small bounded queue,
    so compression never waits for the registry's reply to a chunk and memory stays
    bounded per layer (the queue and the window below) whatever its size.

    A failed PATCH or PUT cannot simply be sent again (the stream is gone, and the
    registry may hold part of it).  As the distribution spec says ("Resuming an
    upload"), the upload's status URL tells how much the registry has (`Range: 0-N`);
    the last WINDOW bytes handed to the registry are kept, so the upload goes on from
    there, or in a new session when the window still starts at byte 0.  When neither
    is possible, RestartLayer makes api.copy produce the layer again from the source.
    All of it within --retries failed requests per blob, waiting as Retry-After says.
    """

    def __init__(self, sink, index=-1):
        self._sink = sink
        self._index = index             # the blob's key in the sink's retry budget
        self._buffer = bytearray()      # not yet handed to the registry
        self._window = collections.deque()  # handed over, not known to be stored
        self._start = 0                 # blob offset of the window's first byte
        self._end = 0                   # blob offset after the last byte handed over
        self._location = None
        self._queue = None
        self._sender = None
        self._error = None

    def write(self, data):
        self._buffer += data
        if len(self._buffer) >= CHUNK:
            chunk, self._buffer = self._buffer, bytearray()
            self._keep(chunk)
            if self._sender is None:
                self._start_sender()        # sends the window: this chunk
            else:
                self._put(chunk)

    def _keep(self, chunk):
        """Add chunk to the window; drop the oldest bytes beyond WINDOW."""
        self._window.append(chunk)
        self._end += len(chunk)
        while self._end - self._start - len(self._window[0]) >= WINDOW:
            self._start += len(self._window.popleft())

    def _skip_to(self, offset):
        """The registry has every byte before offset: forget them."""
        while self._window and self._start + len(self._window[0]) <= offset:
            self._start += len(self._window.popleft())
        if self._window and offset > self._start:
            self._window[0] = self._window[0][offset - self._start:]
        self._start = offset

    # -- the streamed PATCH ------------------------------------------------------------
    def _start_sender(self):
        """A PATCH that sends the window, then what _put queues, until None."""
        if self._location is None:
            self._location = self._sink._start_upload()
        self._queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self._sender = self._sink.helpers.start(self._send, list(self._window), self._queue,
                                                name="occystrap-upload")

    @staticmethod
    def _chunks(pending, pieces):
        yield from pending
        while True:
            chunk = pieces.get()
            if chunk is None:
                return
            yield chunk

    def _send(self, pending, pieces):
        try:
            response = self._sink.client.request(
                "PATCH", self._location, scope=self._sink.scope,
                body=self._chunks(pending, pieces),
                headers={"Content-Type": "application/octet-stream"}, ok=(202,),
                retry=False)
            self._location = self._sink._absolute(
                response.headers.get("Location") or self._location)
        except BaseException as exc:    # handed to the writing thread (_put, _finish_stream)
            self._error = exc

    def _put(self, item):
        while True:
            if self._error is not None:
                self._recover()
                if item is not None:
                    return              # the new sender sends it: it is in the window
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _recover(self):
        """The PATCH failed: go on from what the registry has, in a new sender."""
        error, self._error = self._error, None
        self._sender.join()
        self._sender = None
        self._skip_to(self._resume_point(error))
        self._start_sender()

    def _finish_stream(self):
        while self._sender is not None:
            self._put(None)
            self._sender.join()
            if self._error is None:
                self._sender = None
            else:
                self._recover()
        self._skip_to(self._end)        # the PATCH was accepted: all of it is stored

    def _resume_point(self, error, digest=None):
        """Where to go on after a failed upload request: the registry's offset in this
        session when the window still holds the bytes from there, else 0 in a new
        session when the window holds the whole blob; None when the registry has the
        blob already (the PUT's answer was lost).  Raises error when it is not
        transient or --retries are spent, RestartLayer when the bytes are gone."""
        sink = self._sink
        sink._failed(self._index, error)
        if digest is not None and sink._exists(digest):
            return None
        status = sink._upload_status(self._location)
        if status is not None and self._start <= status[1] <= self._end:
            self._location = status[0]
            return status[1]
        if self._start == 0:
            self._location = sink._start_upload()
            return 0
        raise RestartLayer("the registry lost part of the upload") from error

    # -- the end -------------------------------------------------------------------------
    def commit(self, result):
        self.store(result.digest)

    def store(self, digest):
        """End the stream and store it as the blob digest."""
        sink = self._sink
        self._finish_stream()
        if self._location is None:
            self._location = sink._start_upload()
        if self._buffer:
            chunk, self._buffer = self._buffer, bytearray()
            self._keep(chunk)
        while True:
            try:
                sink.client.request("PUT", _with_digest(self._location, digest),
                                    scope=sink.scope, body=b"".join(self._window),
                                    headers={"Content-Type": "application/octet-stream"},
                                    ok=(201, 204), retry=False)
                break
            except RegistryError as exc:
                offset = self._resume_point(exc, digest)
                if offset is None:
                    break
                self._skip_to(offset)
        self._window.clear()
        self._location = None

    def abort(self):
        if self._sender is not None:
            while self._error is None and self._sender.is_alive():
                try:                    # end the PATCH's body; nothing is resumed
                    self._queue.put(None, timeout=0.1)
                    break
                except queue.Full:
                    continue
            self._sender.join()
            self._sender = None
        if self._location is not None:
            try:
                self._sink.client.request("DELETE", self._location, scope=self._sink.scope,
                                          ok=(200, 202, 204, 404), retry=False)
            except RegistryError:
                pass                    # the registry expires abandoned sessions anyway
        self._location = None
        self._buffer = bytearray()
        self._window.clear()


def _annotations(raw):
    """(digest, annotations dict) of manifest bytes; empty annotations when the bytes
    are not a JSON object with a mapping there (a foreign tag is just not ours)."""
    try:
        document = parse_json(raw)
    except ValueError:
        document = None
    annotations = document.get("annotations") if isinstance(document, dict) else None
    return model.sha256_digest(raw), annotations if isinstance(annotations, dict) else {}


def _with_digest(location, digest):
    separator = "&" if urllib.parse.urlsplit(location).query else "?"
    return location + separator + "digest=" + urllib.parse.quote(digest)


MANIFEST_ACCEPT = (model.OCI_INDEX, model.DOCKER_LIST, model.OCI_MANIFEST,
                   model.DOCKER_MANIFEST)


class RegistrySink(ImageSink):
    """Writes blobs, manifests and indexes to one repository; the tag goes last."""
    OPTIONS = SINK_OPTIONS
    network = True
    holds_index = True
    stores_manifests = True

    def __init__(self, uri, options):
        self.requested_compression = setting(uri, options, "compression")
        self.compression = self.requested_compression or "gzip"
        if self.compression not in ("gzip", "zstd"):
            raise OutputError("unsupported compression for registry output: %s"
                              % self.compression)
        level = setting(uri, options, "compression_level")
        check_level(self.compression, level)      # before connecting: a typo fails fast
        self.compression_level = level
        self.ref, self.client = connect(uri, options, "dest")
        self.scope = "repository:%s:pull,push" % self.ref.repository
        self.layer_media_type = layer_media_type(None, self.compression)
        self._lock = threading.Lock()
        self._failures = {}                 # blob index -> failed upload requests
        self._put = []                      # (reference, digest, media type, blob digests)
        self._source_format = None
        self.reference = self.ref.reference     # None while an index's child is written
        self.last_manifest = None

    @classmethod
    def from_uri(cls, uri, options):
        return cls(uri, options)

    def _absolute(self, location):
        return urllib.parse.urljoin(self.client.base_url + "/", location)

    def _start_upload(self):
        response = self.client.request("POST", "/v2/%s/blobs/uploads/" % self.ref.repository,
                                       scope=self.scope, ok=(202,))
        location = response.headers.get("Location")
        if not location:
            raise OutputError("registry gave no upload Location for %s" % self.ref)
        return self._absolute(location)

    def _upload_status(self, location):
        """(Location, offset) of an upload session from its status URL (distribution
        spec: GET it, `Range: 0-<last byte stored>`), or None when the session is gone
        or the range is not exact: distribution says `0-0` for 0 and for 1 byte."""
        try:
            response = self.client.request("GET", location, scope=self.scope, ok=(200, 204))
        except RegistryError as exc:
            if exc.status in (400, 404):        # BLOB_UPLOAD_UNKNOWN / _INVALID
                return None
            raise
        found = re.match(r"^(?:bytes=)?0-(\d+)$", (response.headers.get("Range") or "").strip())
        if not found or found.group(1) == "0":
            return None
        return (self._absolute(response.headers.get("Location") or location),
                int(found.group(1)) + 1)

    def _failed(self, index, error):
        """Count a failed upload request for blob index against --retries, then wait
        (Retry-After, else backoff); re-raise error when retrying cannot help."""
        if not isinstance(error, RegistryError) or not error.transient:
            raise error
        with self._lock:
            failures = self._failures[index] = self._failures.get(index, 0) + 1
        if failures > self.client.retries:
            raise error
        self.client.pause("upload of blob %s" % index, error, failures - 1, error.retry_after)

    def _exists(self, digest):
        try:
            self.client.request("HEAD", "/v2/%s/blobs/%s" % (self.ref.repository, digest),
                                scope=self.scope)
            return True
        except RegistryError as exc:
            if exc.status == 404:
                return False
            raise

    # -- ImageSink -------------------------------------------------------------------
    def begin(self, source):
        """The manifest format follows the source's (OCI stays OCI, Docker v2 stays
        Docker v2) unless zstd needs OCI."""
        self._source_format = (source.manifest(), source.manifest_media_type,
                               source.manifest_raw)
        self.layer_media_type = layer_media_type(source.manifest_media_type, self.compression)

    def open_layer(self, ref):
        return _Upload(self, ref.index)

    def try_reuse(self, desc):
        """The destination has desc's blob (HEAD), or it was mounted from desc.origin,
        the repository it came from on this registry."""
        if self._exists(desc.digest):
            return True
        origin = desc.origin
        if origin is None or origin.host != self.ref.api_host or \
                origin.repository == self.ref.repository:
            return False
        try:
            return self._mount_from(desc.digest, origin.repository)
        except RegistryError:       # e.g. no pull right on the origin: upload as usual
            return False

    def _mount_from(self, digest, repository):
        """Cross-repository mount of digest from repository on this registry."""
        path = "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (
            self.ref.repository, urllib.parse.quote(digest), urllib.parse.quote(repository))
        response = self.client.request("POST", path, scope=self.scope + " repository:%s:pull"
                                       % repository, ok=(201, 202))
        if response.status == 201:
            return True
        location = response.headers.get("Location")      # fell back to a session: drop it
        if location:
            try:
                self.client.request("DELETE", self._absolute(location), scope=self.scope,
                                    ok=(200, 202, 204, 404), retry=False)
            except RegistryError:
                pass
        return False

    @property
    def blob_scope(self):
        return ("registry", self.ref.api_host, self.ref.repository)

    @property
    def blob_origin(self):
        """Where this push's blobs live: a later push to another repository of the
        same registry can mount them from there (the layer cache records it)."""
        return Origin(self.ref.api_host, self.ref.repository)

    def put_blob(self, desc, stream):
        upload = _Upload(self, desc.digest)
        try:
            for chunk in iter(lambda: stream.read(CHUNK), b""):
                upload.write(chunk)
            upload.store(desc.digest)
        except BaseException:
            upload.abort()
            raise

    def put_manifest(self, raw, media_type, reference):
        document = parse_json(raw)
        blobs = [d["digest"] for d in [document.get("config")] + document.get("layers", [])
                 if isinstance(d, dict)] if "layers" in document else []
        reference = reference or model.sha256_digest(raw)
        response = self.client.request(
            "PUT", "/v2/%s/manifests/%s" % (self.ref.repository, reference),
            scope=self.scope, body=raw, headers={"Content-Type": media_type},
            ok=(200, 201, 202))
        digest = response.headers.get("Docker-Content-Digest") or model.sha256_digest(raw)
        self._put.append((reference, digest, media_type, blobs))
        self.last_manifest = (model.sha256_digest(raw), len(raw), media_type)
        if reference == self.ref.reference:
            self.tagged_digest = model.sha256_digest(raw)

    put_index = put_manifest

    def finish(self, config_bytes, results):
        """The per-image path: upload the config, then the manifest under the tag."""
        raw, media_type = self.image_manifest(config_bytes, results)
        self.put_manifest(raw, media_type, self.reference)

    def image_manifest(self, config_bytes, results):
        """Upload the config and return (manifest bytes, media type) for results."""
        config_digest = model.sha256_digest(config_bytes)
        if not self._exists(config_digest):
            while True:
                upload = _Upload(self, "config")
                try:
                    upload.write(config_bytes)
                    upload.store(config_digest)
                    break
                except RestartLayer:        # the config is in memory: write it again
                    upload.abort()
        base, base_type, base_raw = self._source_format or (None, None, None)
        return rebuilt_manifest(base, base_type, base_raw, config_bytes, results,
                                self.compression, self.provenance)

    def _tagged_now(self, method):
        """The answer to METHOD of the destination tag's manifest, None when absent."""
        try:
            return self.client.request(
                method, "/v2/%s/manifests/%s" % (self.ref.repository, self.ref.reference),
                scope=self.scope, headers={"Accept": ", ".join(MANIFEST_ACCEPT)})
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise

    def current_digest(self):
        """What the destination tag names now (a HEAD, no body), or None."""
        response = self._tagged_now("HEAD")
        digest = (response.headers.get("Docker-Content-Digest") or "").strip() \
            if response is not None else ""
        return digest if model.is_digest(digest) else None

    def current_annotations(self):
        """(digest, annotations) of what the destination tag names now (one GET)."""
        response = self._tagged_now("GET")
        return _annotations(response.data) if response is not None else None

    def verify(self, full=False):
        errors = []
        try:
            for reference, digest, media_type, blobs in self._put:
                for blob in blobs:
                    if not self._exists(blob):
                        errors.append("Blob missing from registry: %s" % blob)
                response = self.client.request(
                    "GET", "/v2/%s/manifests/%s" % (self.ref.repository, reference),
                    scope=self.scope, headers={"Accept": media_type})
                if model.sha256_digest(response.data) != digest:
                    errors.append("Manifest digest mismatch: pushed %s, registry serves %s"
                                  % (digest, model.sha256_digest(response.data)))
        except RegistryError as exc:
            errors.append("Verification request failed: %s" % exc)
        return errors

    def close(self):
        self.client.close()
