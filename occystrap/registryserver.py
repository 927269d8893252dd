"""A small embedded OCI-distribution registry: the push target of `proxy` and `dockerpush://`.

It implements the push half of the distribution API (spec "Pushing blobs", "Pushing
manifests") plus the reads a pushing client makes afterwards:

    GET  /v2/                                   200 {} (API version check)
    HEAD/GET /v2/<name>/blobs/<digest>          from the blob store, else the hooks
    POST /v2/<name>/blobs/uploads/              202 session; ?mount=&from= 201 when known;
                                                ?digest= with a body: monolithic, 201
    GET/PATCH/PUT/DELETE .../uploads/<uuid>     status, append (Content-Range checked,
                                                416 when it does not continue the upload),
                                                finish (sha256 verified), cancel
    PUT  /v2/<name>/manifests/<ref>             the on_manifest hook, then 201
    HEAD/GET /v2/<name>/manifests/<ref>         the manifest_lookup hook, else what was pushed
    GET  /v2/<name>/tags/list                   tags pushed here

Blobs stream to files in a private directory (never a whole blob in RAM), are
content-addressed and shared by every push (two images with a common base layer upload
it once, or mount it), kept for the server's life and removed by close().  Every
response header has CR and LF stripped (CWE-113; 0.4.17's SafeHeaderMixin), and
repository names, tags and digests are validated before they can reach a header.
Errors use the distribution error format {"errors": [{"code", "message", "detail"}]}.

The server speaks HTTP/1.1 with keep-alive on a ThreadingHTTPServer (one thread per
connection, each with a socket timeout), over plain HTTP or, given a certificate and
key, HTTPS.  PushedImage turns a received manifest into an ImageSource, so api.copy()
can run a pushed image through filters into any sink.
"""
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import model
from .compression import from_media_type
from .errors import InputError
from .jsonparse import parse_json
from .transports.base import ImageSource, LayerRef

LOG = logging.getLogger(__name__)

CHUNK = 1 << 20
MAX_MANIFEST = 4 << 20                  # distribution's limit for a manifest body
API_VERSION = "registry/2.0"
DRAIN_LIMIT = 16 << 20                  # unread request bodies up to this are read on errors

# The distribution spec's grammar ("Pulling manifests"), as in transports/registry.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(r"^%s(?:/%s)*$" % (_COMPONENT, _COMPONENT))
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_ANY_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
_UUID_RE = re.compile(r"^[0-9a-f-]{36}$")

LIST_TYPES = (model.OCI_INDEX, model.DOCKER_LIST)
MANIFEST_TYPES = (model.DOCKER_MANIFEST, model.OCI_MANIFEST)

_ROUTES = [
    (re.compile(r"^/v2/?$"), "base"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$"), "uploads"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)$"), "upload"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$"), "blob"),
    (re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$"), "manifest"),
    (re.compile(r"^/v2/(?P<name>.+)/tags/list$"), "tags"),
]


def sanitize_header_value(value):
    """A header value with CR, LF (and NUL) removed: no response splitting (CWE-113)."""
    return str(value).replace("\r", "").replace("\n", "").replace("\0", "")


class RegistryHTTPError(Exception):
    """An error answer: HTTP status, distribution error code, message (and detail)."""

    def __init__(self, status, code, message, detail=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}


def error_body(code, message, detail=None):
    entry = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}).encode()


class BlobStream:
    """A blob served from elsewhere (a hook's answer to GET/HEAD /blobs/<d>).

    `chunks` is an iterable of bytes (not used for HEAD), `size` the length when known
    (else the answer is chunked), `close` releases the source."""

    def __init__(self, size=None, chunks=(), media_type="application/octet-stream",
                 close=None):
        self.size = size
        self.chunks = chunks
        self.media_type = media_type
        self._close = close

    def close(self):
        if self._close is not None:
            self._close()
            self._close = None


# -- the blob store ---------------------------------------------------------------------

class Upload:
    """One upload session: a temp file in the store, hashed as it grows."""

    def __init__(self, store, name):
        self.uuid = str(uuid.uuid4())
        self.name = name
        self.store = store
        fd, self.path = tempfile.mkstemp(prefix="upload-", suffix=".partial", dir=store.root)
        self.file = os.fdopen(fd, "wb")
        self.hash = hashlib.sha256()
        self.offset = 0
        self.lock = threading.Lock()
        self.touched = time.monotonic()

    def write(self, data):
        self.file.write(data)
        self.hash.update(data)
        self.offset += len(data)
        self.touched = time.monotonic()

    def finish(self, digest):
        """Close the file and add it to the store under digest; False on a mismatch
        (the data is then discarded)."""
        self.file.close()
        if "sha256:" + self.hash.hexdigest() != digest:
            self.discard()
            return False
        self.store._add(self.path, digest, self.offset)
        return True

    def discard(self):
        if not self.file.closed:
            self.file.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class BlobStore:
    """Content-addressed blob files in a private directory, shared by all pushes."""

    def __init__(self, directory=None):
        self.root = tempfile.mkdtemp(prefix="occystrap-blobs-", dir=directory)
        self._lock = threading.Lock()
        self._sizes = {}

    def _file(self, digest):
        return os.path.join(self.root, "sha256-" + digest.split(":", 1)[1])

    def _add(self, temp_path, digest, size):
        # Two pushes of the same blob may race here: both files hold the same bytes.
        os.replace(temp_path, self._file(digest))
        with self._lock:
            self._sizes[digest] = size

    def add_bytes(self, data):
        """Store bytes directly; returns their digest."""
        digest = model.sha256_digest(data)
        if not self.has(digest):
            fd, path = tempfile.mkstemp(prefix="upload-", suffix=".partial", dir=self.root)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self._add(path, digest, len(data))
        return digest

    def has(self, digest):
        with self._lock:
            return digest in self._sizes

    def size(self, digest):
        with self._lock:
            return self._sizes.get(digest)

    def path(self, digest):
        """The file holding digest, or None if it was never pushed."""
        return self._file(digest) if self.has(digest) else None

    def open(self, digest):
        path = self.path(digest)
        if path is None:
            raise InputError("blob %s was not pushed" % digest)
        return open(path, "rb")

    def digests(self):
        with self._lock:
            return list(self._sizes)

    def close(self):
        with self._lock:
            self._sizes.clear()
        shutil.rmtree(self.root, ignore_errors=True)


# -- HTTP --------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "occystrap-registry"
    sys_version = ""

    def version_string(self):
        return self.server_version          # no trailing space from the empty sys_version

    _body_left = False
    _body = None                            # this request's body reader (_body_chunks)
    # Set by RegistryServer: the owning server object (hooks, store, uploads).
    registry = None

    def setup(self):
        self.timeout = self.registry.timeout
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def log_message(self, fmt, *args):
        LOG.debug("%s: %s", self.address_string(), fmt % args)

    def log_request(self, code="-", size="-"):
        LOG.debug("%s %s -> %s", self.command, self.path.split("?", 1)[0], code)

    def send_header(self, keyword, value):
        super().send_header(sanitize_header_value(keyword), sanitize_header_value(value))

    def send_error(self, code, message=None, explain=None):
        """Protocol-level errors (bad request line, unknown method) as JSON errors."""
        self.close_connection = True
        try:
            self._send(code, error_body("UNSUPPORTED" if code in (405, 501) else "UNKNOWN",
                                        message or self.responses.get(code, ("",))[0]))
        except OSError:
            pass

    # -- plumbing --------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _dispatch(self):
        if not self.server.begin_request(self.request):
            self.close_connection = True    # shutting down: cut_connections got here first
            return
        try:
            self._route()
        finally:
            if self.server.end_request(self.request):
                self.close_connection = True    # shutting down: answered, now close

    def _route(self):
        self._body_left = self._has_body()
        self._body = None
        try:
            parts = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(parts.path)
            self.query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
            for pattern, route in _ROUTES:
                match = pattern.match(path)
                if match:
                    break
            else:
                raise RegistryHTTPError(404, "NOT_FOUND", "no such endpoint")
            args = match.groupdict()
            if "name" in args:
                _check_name(args["name"])
            method = getattr(self, "_%s_%s" % (route, self.command.lower()), None)
            if method is None:
                raise RegistryHTTPError(405, "UNSUPPORTED", "%s is not supported on this "
                                        "endpoint" % self.command)
            method(**args)
        except RegistryHTTPError as exc:
            self._drain_small()
            self._send(exc.status, error_body(exc.code, exc.message, exc.detail),
                       headers=exc.headers)
        except (ConnectionError, socket.timeout, ssl.SSLError) as exc:
            LOG.debug("%s %s: connection lost: %s", self.command, self.path, exc)
            self.close_connection = True
        except Exception as exc:     # a bug or a hook failure: answer, keep serving
            LOG.exception("%s %s failed", self.command, self.path.split("?", 1)[0])
            try:
                self._send(500, error_body("UNKNOWN", "internal error: %s" % exc))
            except OSError:
                self.close_connection = True

    def _drain_small(self):
        """Before an error answer: read the rest of a small unread body so that a client
        that sends its whole body before reading (most do) sees the answer, not a
        reset.  A large one (over DRAIN_LIMIT) closes the connection instead (_send)."""
        if not self._body_left:
            return
        try:
            length = self._content_length()
        except RegistryHTTPError:
            return
        if length is not None and length > DRAIN_LIMIT:
            return
        drained = 0
        try:
            for piece in self._body_chunks():
                drained += len(piece)
                if drained > DRAIN_LIMIT:       # a large chunked body
                    return
        except (OSError, RegistryHTTPError):
            self.close_connection = True

    def _has_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return True
        try:
            return int(self.headers.get("Content-Length") or 0) > 0
        except ValueError:
            return True

    def _send(self, status, body=b"", headers=None, content_type="application/json",
              length=None):
        """One complete answer.  A request body left unread closes the connection (its
        bytes would otherwise be parsed as the next request)."""
        if self._body_left:
            self.close_connection = True
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Docker-Distribution-API-Version", API_VERSION)
        if content_type and (body or length):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _body_chunks(self):
        """The request body in pieces of at most CHUNK bytes (Content-Length or chunked).

        One reader per request: a drain after an error stopped reading midway (a 413)
        continues where reading stopped.  A second reader would wait for all of
        Content-Length again, bytes already read included, until the socket timeout."""
        if self._body is None:
            self._body = self._read_chunks()
        return self._body

    def _read_chunks(self):
        rfile = self.rfile
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                line = rfile.readline(1024)
                if not line.endswith(b"\n"):
                    raise RegistryHTTPError(400, "UNKNOWN", "bad chunked encoding")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise RegistryHTTPError(400, "UNKNOWN", "bad chunk size") from None
                if size == 0:
                    while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass                    # trailers
                    break
                while size:
                    piece = rfile.read(min(size, CHUNK))
                    if not piece:
                        raise ConnectionError("request body cut short")
                    size -= len(piece)
                    yield piece
                if rfile.readline(1024) not in (b"\r\n", b"\n"):
                    raise RegistryHTTPError(400, "UNKNOWN", "bad chunked encoding")
        else:
            try:
                left = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                raise RegistryHTTPError(400, "UNKNOWN", "bad Content-Length") from None
            while left > 0:
                piece = rfile.read(min(left, CHUNK))
                if not piece:
                    raise ConnectionError("request body cut short")
                left -= len(piece)
                yield piece
        self._body_left = False

    def _drain(self):
        for _ in self._body_chunks():
            pass

    def _read_body(self, limit):
        length = self._content_length()
        if length is not None and length > limit:       # refused before reading it
            raise RegistryHTTPError(413, "SIZE_INVALID", "body larger than %d bytes" % limit)
        data = bytearray()
        for piece in self._body_chunks():
            data += piece
            if len(data) > limit:
                raise RegistryHTTPError(413, "SIZE_INVALID", "body larger than %d bytes"
                                        % limit)
        return bytes(data)

    def _content_length(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return None
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise RegistryHTTPError(400, "UNKNOWN", "bad Content-Length") from None

    # -- base ------------------------------------------------------------------------------
    def _base_get(self):
        self._send(200, b"{}")

    _base_head = _base_get

    # -- blobs -----------------------------------------------------------------------------
    def _blob_get(self, name, digest):
        _check_digest(digest)
        registry = self.registry
        path = registry.store.path(digest)
        if path is None:
            stream = registry.fetch_blob(name, digest, self.command)
            if stream is None:
                raise RegistryHTTPError(404, "BLOB_UNKNOWN", "blob unknown to registry",
                                        detail={"digest": digest})
            return self._send_stream(digest, stream)
        with open(path, "rb") as blob:
            size = os.fstat(blob.fileno()).st_size
            start, end, status = 0, size - 1, 200
            headers = {"Docker-Content-Digest": digest, "Accept-Ranges": "bytes",
                       "ETag": '"%s"' % digest}
            wanted = self.headers.get("Range")
            if wanted and self.command == "GET":
                match = re.match(r"^bytes=(\d*)-(\d*)$", wanted.strip())
                if match and (match.group(1) or match.group(2)):
                    if match.group(1):
                        start = int(match.group(1))
                        end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                    else:                                   # suffix: the last N bytes
                        start = max(size - int(match.group(2)), 0)
                    if start >= size or start > end:
                        raise RegistryHTTPError(416, "BLOB_UNKNOWN", "range not satisfiable",
                                                headers={"Content-Range": "bytes */%d" % size})
                    status = 206
                    headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
            length = end - start + 1 if size else 0
            self._send(status, b"", headers=headers, content_type="application/octet-stream",
                       length=length)
            if self.command == "GET" and length:
                blob.seek(start)
                left = length
                while left:
                    piece = blob.read(min(left, CHUNK))
                    if not piece:
                        raise ConnectionError("blob file shrank")
                    self.wfile.write(piece)
                    left -= len(piece)

    def _blob_head(self, name, digest):
        _check_digest(digest)
        registry = self.registry
        size = registry.store.size(digest)
        if size is None:
            size = registry.lookup_blob(name, digest)
        if size is None:
            # Not blob_fetch: a pushing client skips the blobs HEAD finds, so HEAD must
            # only report blobs a pushed manifest can be built from.
            raise RegistryHTTPError(404, "BLOB_UNKNOWN", "blob unknown to registry",
                                    detail={"digest": digest})
        self._send(200, b"", headers={"Docker-Content-Digest": digest},
                   content_type="application/octet-stream", length=size)

    def _send_stream(self, digest, stream):
        try:
            headers = {"Docker-Content-Digest": digest}
            if stream.size is None and self.command == "GET":
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Docker-Distribution-API-Version", API_VERSION)
                self.send_header("Content-Type", stream.media_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in stream.chunks:
                    if piece:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
                return
            self._send(200, b"", headers=headers, content_type=stream.media_type,
                       length=stream.size or 0)
            if self.command == "GET":
                sent = 0
                for piece in stream.chunks:
                    self.wfile.write(piece)
                    sent += len(piece)
                if sent != stream.size:
                    # The client was promised more: make it see a broken transfer.
                    self.close_connection = True
                    raise ConnectionError("blob %s cut short (%d of %d bytes)"
                                          % (digest, sent, stream.size))
        finally:
            stream.close()

    def _blob_delete(self, name, digest):
        raise RegistryHTTPError(405, "UNSUPPORTED", "deleting blobs is not supported")

    # -- uploads ---------------------------------------------------------------------------
    def _upload_headers(self, name, upload):
        return {"Location": "/v2/%s/blobs/uploads/%s" % (name, upload.uuid),
                "Docker-Upload-UUID": upload.uuid,
                "Range": "0-%d" % max(upload.offset - 1, 0)}

    def _blob_created(self, name, digest):
        self._send(201, b"", headers={"Location": "/v2/%s/blobs/%s" % (name, digest),
                                      "Docker-Content-Digest": digest})

    def _uploads_post(self, name):
        registry = self.registry
        mount = self.query.get("mount", [None])[0]
        if mount:
            _check_digest(mount)
            if registry.blob_known(name, mount):
                self._drain()
                return self._blob_created(name, mount)
        digest = self.query.get("digest", [None])[0]
        if digest:                                  # monolithic upload: POST ?digest= + body
            _check_digest(digest)
            upload = registry.store_upload(name)
            self._append(upload)
            return self._finish(name, upload, digest)
        self._drain()                               # a body without ?digest= means nothing
        upload = registry.new_upload(name)
        self._send(202, b"", headers=self._upload_headers(name, upload))

    def _upload_get(self, name, uuid):
        upload = self.registry.get_upload(name, uuid)
        self._send(204, b"", headers=self._upload_headers(name, upload))

    def _check_range(self, upload):
        """416 unless Content-Range (when sent) continues the upload exactly."""
        content_range = self.headers.get("Content-Range")
        if not content_range:
            return
        match = _RANGE_RE.match(content_range.strip())
        length = self._content_length()
        if (not match or int(match.group(1)) != upload.offset
                or int(match.group(2)) < int(match.group(1))
                or (length is not None and int(match.group(2)) - int(match.group(1)) + 1
                    != length)):
            raise RegistryHTTPError(416, "BLOB_UPLOAD_INVALID",
                                    "Content-Range %s does not continue the upload at offset "
                                    "%d" % (content_range, upload.offset),
                                    headers=self._upload_headers(upload.name, upload))

    def _append(self, upload):
        try:
            for piece in self._body_chunks():
                upload.write(piece)
        except BaseException:
            self.registry.drop_upload(upload)       # a partial chunk cannot be resumed
            raise

    def _upload_patch(self, name, uuid):
        upload = self.registry.get_upload(name, uuid)
        with upload.lock:
            self._check_range(upload)
            self._append(upload)
        self._send(202, b"", headers=self._upload_headers(name, upload))

    def _upload_put(self, name, uuid):
        upload = self.registry.get_upload(name, uuid)
        digest = self.query.get("digest", [None])[0]
        if not digest:
            raise RegistryHTTPError(400, "DIGEST_INVALID", "PUT of an upload needs ?digest=")
        _check_digest(digest)
        with upload.lock:
            self._check_range(upload)
            self._append(upload)
            self.registry.forget_upload(upload)
            self._finish(name, upload, digest)

    def _finish(self, name, upload, digest):
        if not upload.finish(digest):
            raise RegistryHTTPError(400, "DIGEST_INVALID", "provided digest did not match "
                                    "uploaded content", detail={"digest": digest})
        self._blob_created(name, digest)

    def _upload_delete(self, name, uuid):
        upload = self.registry.get_upload(name, uuid)
        self.registry.drop_upload(upload)
        self._send(204, b"")

    # -- manifests -------------------------------------------------------------------------
    def _manifest_get(self, name, reference):
        _check_reference(reference)
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
        _check_reference(reference)
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


def _check_name(name):
    if len(name) > 255 or not NAME_RE.match(name):
        raise RegistryHTTPError(400, "NAME_INVALID", "invalid repository name",
                                detail={"name": name})


def _check_digest(digest):
    if not DIGEST_RE.match(digest):
        what = ("unsupported digest algorithm" if _ANY_DIGEST_RE.match(digest)
                else "invalid digest")
        raise RegistryHTTPError(400, "DIGEST_INVALID", what, detail={"digest": digest})


def _check_reference(reference):
    if ":" in reference:
        _check_digest(reference)
    elif not TAG_RE.match(reference):
        raise RegistryHTTPError(400, "TAG_INVALID", "invalid tag",
                                detail={"reference": reference})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False          # RegistryServer.close() joins, with a deadline
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, handler, ssl_context, family):
        self.address_family = family
        self.ssl_context = ssl_context
        self.conn_lock = threading.Lock()
        self.connections = set()
        self.busy = set()               # connections in the middle of a request
        self.closing = False
        self.threads = set()
        super().__init__(address, handler)

    def get_request(self):
        sock, address = super().get_request()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if self.ssl_context is not None:
                # The handshake happens in the connection's thread (_Handler.setup), so a
                # slow client cannot stall accept().
                sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                    do_handshake_on_connect=False)
        except OSError:
            sock.close()
            raise
        return sock, address

    def process_request(self, request, client_address):
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address),
                                  name="occystrap-registry-conn", daemon=True)
        with self.conn_lock:
            self.connections.add(request)
            self.threads.add(thread)
        thread.start()

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.conn_lock:
                self.connections.discard(request)
                self.threads.discard(threading.current_thread())

    def handle_error(self, request, client_address):
        LOG.debug("connection from %s failed", client_address, exc_info=True)

    def begin_request(self, sock):
        """A request arrived on sock; False when the server is already closing."""
        with self.conn_lock:
            if self.closing:
                return False
            self.busy.add(sock)
            return True

    def end_request(self, sock):
        """The answer is sent; True when the connection should now close."""
        with self.conn_lock:
            self.busy.discard(sock)
            return self.closing

    def cut_connections(self, busy_too=False):
        """Close idle keep-alive connections; one in the middle of a request finishes its
        answer first (a push's last PUT may still be forwarding: nothing is lost), unless
        busy_too (the wait for it is over)."""
        with self.conn_lock:
            self.closing = True
            connections = [sock for sock in self.connections
                           if busy_too or sock not in self.busy]
        for sock in connections:
            try:
                # The plain socket's shutdown (SSLSocket.shutdown would drop its state
                # under a thread that is still reading).
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


class RegistryServer:
    """The embedded registry.  Hooks (all optional, called from connection threads):

    on_manifest(name, reference, body, media_type) -> None
        a manifest was pushed (all its blobs are known); raise RegistryHTTPError to
        refuse it (any other exception answers 500).  The answer's digest is always
        sha256(body): what the client pushed.
    manifest_lookup(name, reference, accept, method) -> (body, media_type) or None
        asked before the manifests pushed here (None falls through to them).
    blob_lookup(name, digest) -> size or None
        whether a blob the store lacks exists elsewhere (HEAD, mounts, manifest checks).
    blob_fetch(name, digest, method) -> BlobStream or None
        serve a blob the store lacks (GET only: HEAD answers what a push can use).
    """

    def __init__(self, blob_dir=None, host="127.0.0.1", port=0, *, certfile=None,
                 keyfile=None, ssl_context=None, timeout=300.0, on_manifest=None,
                 manifest_lookup=None, blob_lookup=None, blob_fetch=None,
                 keep_manifests=True):
        self.blob_dir = blob_dir
        self.host = host
        self.requested_port = int(port)
        if ssl_context is None and certfile:
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
            ssl_context.load_cert_chain(certfile, keyfile)
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.on_manifest = on_manifest
        self.manifest_lookup = manifest_lookup
        self.blob_lookup = blob_lookup
        self.blob_fetch = blob_fetch
        self.keep_manifests = keep_manifests
        self.store = None
        self.port = None
        self._httpd = None
        self._thread = None
        self._lock = threading.Lock()
        self._uploads = {}
        self._manifests = {}            # (name, tag or digest) -> (body, media type)
        self._tags = {}                 # name -> set of tags

    # -- life cycle ------------------------------------------------------------------------
    @property
    def scheme(self):
        return "https" if self.ssl_context is not None else "http"

    @property
    def netloc(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "%s:%d" % (host, self.port)

    @property
    def url(self):
        return "%s://%s" % (self.scheme, self.netloc)

    def start(self):
        """Bind, then serve in a background thread; returns self."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        handler = type("Handler", (_Handler,), {"registry": self})
        self.store = BlobStore(self.blob_dir)
        try:
            self._httpd = _Server((self.host, self.requested_port), handler, self.ssl_context,
                                  family)
        except BaseException:
            self.store.close()
            raise
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.2},
                                        name="occystrap-registry", daemon=True)
        self._thread.start()
        return self

    def stop_accepting(self):
        """Stop taking new connections; requests already in progress go on."""
        if self._httpd is not None and self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
            self._httpd.socket.close()

    def close(self, timeout=10.0):
        """Stop, cut idle keep-alive connections, wait (bounded) for connection
        threads, and delete every blob."""
        if self._httpd is None:
            return
        self.stop_accepting()
        self._httpd.cut_connections()
        deadline = time.monotonic() + timeout
        with self._httpd.conn_lock:
            threads = list(self._httpd.threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            LOG.warning("a registry connection did not finish in time; cutting it")
            self._httpd.cut_connections(busy_too=True)
            for thread in threads:
                thread.join(1.0)
        self._httpd.server_close()
        self._httpd = None
        with self._lock:
            uploads = list(self._uploads.values())
            self._uploads.clear()
        for upload in uploads:
            upload.discard()
        self.store.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- state used by the handler ---------------------------------------------------------
    def store_upload(self, name):
        """An upload that is not registered as a session (monolithic POST)."""
        return Upload(self.store, name)

    def new_upload(self, name):
        upload = Upload(self.store, name)
        with self._lock:
            self._uploads[upload.uuid] = upload
        return upload

    def get_upload(self, name, upload_id):
        with self._lock:
            upload = self._uploads.get(upload_id) if _UUID_RE.match(upload_id) else None
        if upload is None or upload.name != name:
            raise RegistryHTTPError(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to "
                                    "registry", detail={"uuid": upload_id})
        return upload

    def forget_upload(self, upload):
        with self._lock:
            self._uploads.pop(upload.uuid, None)

    def drop_upload(self, upload):
        self.forget_upload(upload)
        upload.discard()

    def lookup_blob(self, name, digest):
        if self.blob_lookup is None:
            return None
        return self.blob_lookup(name, digest)

    def blob_known(self, name, digest):
        return self.store.has(digest) or self.lookup_blob(name, digest) is not None

    def fetch_blob(self, name, digest, method):
        if self.blob_fetch is None:
            return None
        return self.blob_fetch(name, digest, method)

    def put_manifest(self, name, reference, body, header_type=""):
        """Validate a pushed manifest, run on_manifest, remember it; returns its digest."""
        try:
            manifest = parse_json(body)
        except ValueError as exc:       # also a document nested too deeply (jsonparse)
            raise RegistryHTTPError(400, "MANIFEST_INVALID",
                                    "manifest is not valid JSON: %s" % exc) from None
        if not isinstance(manifest, dict):
            raise RegistryHTTPError(400, "MANIFEST_INVALID", "manifest is not a JSON object")
        media_type = (header_type if header_type in MANIFEST_TYPES + LIST_TYPES
                      else manifest.get("mediaType") or header_type or model.DOCKER_MANIFEST)
        if "manifests" in manifest or media_type in LIST_TYPES:
            raise RegistryHTTPError(400, "MANIFEST_INVALID",
                                    "manifest lists and image indexes are not supported: "
                                    "push a single-platform image (e.g. docker push, or "
                                    "skopeo copy without --all)")
        if manifest.get("schemaVersion") != 2:
            raise RegistryHTTPError(400, "MANIFEST_INVALID", "only schema 2 manifests are "
                                    "supported (got schemaVersion %r)"
                                    % manifest.get("schemaVersion"))
        config = manifest.get("config")
        layers = manifest.get("layers")
        if not isinstance(config, dict) or not isinstance(layers, list):
            raise RegistryHTTPError(400, "MANIFEST_INVALID", "manifest has no config or layers")
        for desc in [config] + layers:
            digest = desc.get("digest") if isinstance(desc, dict) else None
            if not isinstance(digest, str) or not DIGEST_RE.match(digest):
                raise RegistryHTTPError(400, "MANIFEST_INVALID", "bad descriptor digest %r"
                                        % (digest,))
            if not self.blob_known(name, digest):
                raise RegistryHTTPError(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to "
                                        "registry", detail={"digest": digest})
        digest = model.sha256_digest(body)
        if ":" in reference and reference != digest:
            raise RegistryHTTPError(400, "DIGEST_INVALID", "manifest digest %s does not match "
                                    "the reference" % digest, detail={"digest": reference})
        if self.on_manifest is not None:
            self.on_manifest(name, reference, body, media_type)
        if self.keep_manifests:
            with self._lock:
                self._manifests[(name, reference)] = (body, media_type)
                self._manifests[(name, digest)] = (body, media_type)
                if ":" not in reference:
                    self._tags.setdefault(name, set()).add(reference)
        return digest

    def pushed_manifest(self, name, reference):
        with self._lock:
            return self._manifests.get((name, reference))

    def find_manifest(self, name, reference, accept="", method="GET"):
        if self.manifest_lookup is not None:
            found = self.manifest_lookup(name, reference, accept, method)
            if found is not None:
                return found
        return self.pushed_manifest(name, reference)

    def tags(self, name):
        with self._lock:
            return sorted(self._tags.get(name, ()))


# -- a pushed image as an ImageSource --------------------------------------------------------

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
