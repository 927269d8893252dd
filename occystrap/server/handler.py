"""The HTTP handler: routing, the request body (Content-Length or chunked), and one
complete answer per request; the endpoints live with what they serve (BlobRoutes,
UploadRoutes, ManifestRoutes)."""
import logging
import re
import socket
import ssl
import urllib.parse
from http.server import BaseHTTPRequestHandler

from .blobstore import BlobRoutes
from .manifests import ManifestRoutes
from .protocol import (API_VERSION, CHUNK, RegistryHTTPError, check_name, error_body,
                       sanitize_header_value)
from .uploads import UploadRoutes

LOG = logging.getLogger(__name__)

DRAIN_LIMIT = 16 << 20                  # unread request bodies up to this are read on errors

_ROUTES = [
    (re.compile(r"^/v2/?$"), "base"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$"), "uploads"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]+)$"), "upload"),
    (re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/]+)$"), "blob"),
    (re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$"), "manifest"),
    (re.compile(r"^/v2/(?P<name>.+)/tags/list$"), "tags"),
]


class Handler(BlobRoutes, UploadRoutes, ManifestRoutes, BaseHTTPRequestHandler):
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
                check_name(args["name"])
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
