"""A minimal registry (plain HTTP, no auth) serving one image whose last layer blob stops
halfway until the test releases it: a source that is certainly in the middle of a copy
when a test signals the occystrap process, with no timing involved.

    with StallingRegistry(layers) as registry:
        start `occystrap --insecure process registry://<registry.address>/demo/app:1 ...`
        registry.stalled.wait()      # half of the last layer has been sent
        ... signal the process ...
        registry.release.set()       # the rest follows

signalled_run() does exactly that with a real `python -m occystrap process` and
assert_reported() checks its exit status and its one `Error:` line.
"""
import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

from tests import imagebuilder as ib
from tests.cli import REPO

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar"
CONFIG = "application/vnd.docker.container.image.v1+json"
REPOSITORY = "demo/app"
TAG = "1"
SIGNALS = {signal.SIGTERM: (143, "Error: terminated"),
           signal.SIGINT: (130, "Error: interrupted")}


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


def stall_layers():
    """A small layer, then a 16 MiB one (the one that stalls: half of it is more than
    a registry upload buffers before it starts streaming)."""
    return [ib.layer([("dir", "etc"), ("file", "etc/hostname", b"demo\n")]),
            ib.layer([("file", "big", os.urandom(16 << 20))])]


def signalled_run(registry, destination, sig, *options, ready=None):
    """Start the copy, signal it once the stalled layer is half served (and ready(), when
    given, is true: the destination has seen the copy); (exit status, stderr)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "occystrap", "--insecure", "--retries", "0",
                             *options, "process", "registry://" + registry.reference,
                             destination],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert registry.stalled.wait(60), "the copy never reached the stalled layer"
        deadline = time.monotonic() + 60
        while ready is not None and not ready():
            assert time.monotonic() < deadline and proc.poll() is None, "never ready"
            time.sleep(0.05)
        proc.send_signal(sig)
        registry.release.set()
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def assert_reported(status, err, sig):
    """The exit status and the only Error: line a signal gives (SIGNALS), no traceback."""
    assert (status, [line for line in err.splitlines() if line.startswith("Error:")]) == \
        (SIGNALS[sig][0], [SIGNALS[sig][1]]), err
    assert "Traceback" not in err and "Exception ignored" not in err, err
