"""registry:// sink: push an image over the OCI distribution API (0.4.17 B.10, fixed).

Each layer is compressed while it streams and uploaded as it is produced, in one
chunked-encoding PATCH (no whole layer in RAM, 0.4.17 held two copies); blobs the
registry already has are skipped with a HEAD, or mounted from the source repository on
the same registry; with --layer-cache, reuse_blob() lets a layer an earlier run produced
skip processing altogether (cache.py).  The manifest is Docker schema 2 for gzip and
OCI for zstd (`tar+zstd`, which skopeo and containerd accept; 0.4.17's Docker zstd
type was refused, E.2 #6).  A failed PATCH or PUT resumes from the registry's upload
status, or the layer is made again (_Upload).  The tag is written last, so a failed push
never leaves a half-pushed tag.
"""
import collections
import json
import queue
import re
import threading
import urllib.parse

from ... import model
from ...compression import check_level
from ...errors import OutputError
from ..base import ImageSink, LayerResult, LayerWriter, RestartLayer
from .client import RegistryError
from .connect import SINK_OPTIONS, connect, setting

CHUNK = 1 << 20                     # bytes per queued piece of a streamed upload
QUEUE_DEPTH = 4                     # pieces in flight per layer: bounded memory
WINDOW = 8 << 20                    # bytes kept to resend after a failed upload request

LAYER_TYPES = {("docker", "gzip"): model.DOCKER_LAYER_GZIP,
               ("oci", "gzip"): model.OCI_LAYER_GZIP,
               ("oci", "zstd"): model.OCI_LAYER_ZSTD}


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
        self._sender = threading.Thread(target=self._send,
                                        args=(list(self._window), self._queue),
                                        name="occystrap-upload", daemon=True)
        self._sender.start()

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
        sink = self._sink
        self._finish_stream()
        if self._location is None:
            self._location = sink._start_upload()
        if self._buffer:
            chunk, self._buffer = self._buffer, bytearray()
            self._keep(chunk)
        while True:
            try:
                sink.client.request("PUT", _with_digest(self._location, result.digest),
                                    scope=sink.scope, body=b"".join(self._window),
                                    headers={"Content-Type": "application/octet-stream"},
                                    ok=(201, 204), retry=False)
                break
            except RegistryError as exc:
                offset = self._resume_point(exc, result.digest)
                if offset is None:
                    break
                self._skip_to(offset)
        self._window.clear()
        self._location = None
        sink._counted(result)

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


def _with_digest(location, digest):
    separator = "&" if urllib.parse.urlsplit(location).query else "?"
    return location + separator + "digest=" + urllib.parse.quote(digest)


class RegistrySink(ImageSink):
    OPTIONS = SINK_OPTIONS
    network = True

    def __init__(self, uri, options):
        self.compression = setting(uri, options, "compression", default="gzip") or "gzip"
        if self.compression not in ("gzip", "zstd"):
            raise OutputError("unsupported compression for registry output: %s"
                              % self.compression)
        level = setting(uri, options, "compression_level")
        check_level(self.compression, level)      # before connecting: a typo fails fast
        self.compression_level = level
        self.ref, self.client = connect(uri, options, "dest")
        self.scope = "repository:%s:pull,push" % self.ref.repository
        self.flavour = "oci" if self.compression == "zstd" else "docker"
        self.layer_media_type = LAYER_TYPES[(self.flavour, self.compression)]
        self._lock = threading.Lock()
        self._failures = {}                 # blob index -> failed upload requests
        self._manifest = None
        self._digest = None

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
        self.client.pause("upload of blob %d" % index if index >= 0 else "config upload",
                          error, failures - 1, error.retry_after)

    def _exists(self, digest):
        try:
            self.client.request("HEAD", "/v2/%s/blobs/%s" % (self.ref.repository, digest),
                                scope=self.scope)
            return True
        except RegistryError as exc:
            if exc.status == 404:
                return False
            raise

    def _counted(self, result):
        with self._lock:
            self.layers_written += 1
            self.bytes_written += result.blob_size

    # -- ImageSink -------------------------------------------------------------------
    def begin(self, source):
        self.source = source

    def open_layer(self, ref):
        return _Upload(self, ref.index)

    def try_reuse(self, ref):
        """A layer the source stores exactly as we would (same compression): skip it
        when the destination has it, or mount it from the source repository."""
        if not ref.digest or ref.diff_id is None:
            return None
        from ...compression import from_media_type
        if from_media_type(ref.media_type) != self.compression:
            return None
        media_type = LAYER_TYPES[(self.flavour, self.compression)]
        result = LayerResult(index=ref.index, diff_id=ref.diff_id, size=0, digest=ref.digest,
                             blob_size=ref.size or 0, media_type=media_type, source=ref)
        if self._exists(ref.digest) or self._mount(ref):
            self._counted(result)
            return result
        return None

    def _mount(self, ref):
        source = getattr(self, "source", None)
        if source is None or getattr(source, "ref", None) is None:
            return False
        if source.ref.api_host != self.ref.api_host:
            return False
        return self._mount_from(ref.digest, source.ref.repository)

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

    # -- the layer cache (cache.py) --------------------------------------------------
    @property
    def blob_origin(self):
        """Where this push's blobs live ("host/repository"): a later push to another
        repository of the same registry can mount them from there."""
        return "%s/%s" % (self.ref.api_host, self.ref.repository)

    def reuse_blob(self, digest, origin=None):
        """True when the destination repository has digest (HEAD) or it was mounted
        from origin, the blob_origin of the push that uploaded it."""
        if self._exists(digest):
            return True
        host, _, repository = (origin or "").partition("/")
        if host != self.ref.api_host or not repository or repository == self.ref.repository:
            return False
        try:
            return self._mount_from(digest, repository)
        except RegistryError:       # e.g. no pull right on the origin: upload as usual
            return False

    def finish(self, config_bytes, results):
        config_digest = model.sha256_digest(config_bytes)
        if not self._exists(config_digest):
            result = LayerResult(index=-1, diff_id=config_digest, size=len(config_bytes),
                                 digest=config_digest, blob_size=len(config_bytes),
                                 media_type="")
            while True:
                upload = _Upload(self)
                try:
                    upload.write(config_bytes)
                    upload.commit(result)
                    break
                except RestartLayer:        # the config is in memory: write it again
                    upload.abort()
            with self._lock:
                self.layers_written -= 1            # the config is not a layer
                self.bytes_written -= len(config_bytes)
        manifest_type = model.OCI_MANIFEST if self.flavour == "oci" else model.DOCKER_MANIFEST
        config_type = model.OCI_CONFIG if self.flavour == "oci" else model.DOCKER_CONFIG
        manifest = {
            "schemaVersion": 2, "mediaType": manifest_type,
            "config": {"mediaType": config_type, "size": len(config_bytes),
                       "digest": config_digest},
            "layers": [{"mediaType": r.media_type, "size": r.blob_size, "digest": r.digest}
                       for r in results]}
        raw = json.dumps(manifest, separators=(",", ":")).encode()
        response = self.client.request(
            "PUT", "/v2/%s/manifests/%s" % (self.ref.repository, self.ref.reference),
            scope=self.scope, body=raw, headers={"Content-Type": manifest_type},
            ok=(200, 201, 202))
        self._manifest = manifest
        self._digest = response.headers.get("Docker-Content-Digest") or model.sha256_digest(raw)

    def verify(self, full=False):
        errors = []
        try:
            for desc in [self._manifest["config"]] + self._manifest["layers"]:
                if not self._exists(desc["digest"]):
                    errors.append("Blob missing from registry: %s" % desc["digest"])
            response = self.client.request(
                "GET", "/v2/%s/manifests/%s" % (self.ref.repository, self.ref.reference),
                scope=self.scope, headers={"Accept": self._manifest["mediaType"]})
            if model.sha256_digest(response.data) != self._digest:
                errors.append("Manifest digest mismatch: pushed %s, registry serves %s"
                              % (self._digest, model.sha256_digest(response.data)))
        except RegistryError as exc:
            errors.append("Verification request failed: %s" % exc)
        return errors

    def close(self):
        self.client.close()
