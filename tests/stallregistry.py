"""A minimal registry (plain HTTP, no auth) serving one image whose last layer blob stops
halfway until the test releases it: a source that is certainly in the middle of a copy
when a test signals the occystrap process, with no timing involved.

    with StallingRegistry(layers) as registry:
        start `occystrap --insecure process registry://<registry.address>/demo/app:1 ...`
        registry.stalled.wait()      # half of the last layer has been sent
        ... signal the process ...
        registry.release.set()       # the rest follows
"""
import hashlib
import http.server
import json
import threading

from tests import imagebuilder as ib

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar"
CONFIG = "application/vnd.docker.container.image.v1+json"
REPOSITORY = "demo/app"
TAG = "1"


def _digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass                # a signalled client drops its connections: expected here


class StallingRegistry:
    def __init__(self, layers):
        """:param layers: uncompressed layer tars (bytes), bottom first."""
        config = json.dumps(ib.default_config([_digest(data) for data in layers])).encode()
        self.blobs = {_digest(data): data for data in layers + [config]}
        self.stall_digest = _digest(layers[-1])
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "size": len(config), "digest": _digest(config)},
            "layers": [{"mediaType": LAYER, "size": len(data), "digest": _digest(data)}
                       for data in layers]}).encode()
        self.stalled = threading.Event()
        self.release = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self):
        return "127.0.0.1:%d" % self._server.server_address[1]

    @property
    def reference(self):
        return "%s/%s:%s" % (self.address, REPOSITORY, TAG)

    def _handler(self):
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, body, content_type, digest=None):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if digest:
                    self.send_header("Docker-Content-Digest", digest)
                self.end_headers()
                if self.command == "HEAD":
                    return
                if digest != registry.stall_digest:
                    self.wfile.write(body)
                    return
                half = len(body) // 2
                self.wfile.write(body[:half])
                self.wfile.flush()
                registry.stalled.set()
                registry.release.wait(120)      # bounded only so a broken test ends
                try:
                    self.wfile.write(body[half:])
                except OSError:
                    pass                        # the client is gone

            def do_GET(self):
                prefix = "/v2/%s/" % REPOSITORY
                if self.path == "/v2/":
                    return self._send(b"{}", "application/json")
                if self.path == prefix + "manifests/" + TAG:
                    return self._send(registry.manifest, MANIFEST, _digest(registry.manifest))
                if self.path.startswith(prefix + "blobs/"):
                    digest = self.path[len(prefix + "blobs/"):]
                    if digest in registry.blobs:
                        return self._send(registry.blobs[digest], "application/octet-stream",
                                          digest)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET

        return Handler

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
