"""A fault-injecting HTTP proxy in front of a real registry, for the failures a healthy
registry never produces: corrupted blobs, connections cut mid-body, 5xx bursts.

Faults are (method, path regex, kind, count): kind is "corrupt" (flip one body byte),
"cut" (send half the body, then close), "reset" (reset the connection, forwarding
nothing), "lost" (forward, then reset instead of answering: the request was done but
its answer is lost), "norange" (forward without the Range header), an int
status to answer instead, a (status, {header: value}) pair to answer with those
headers (e.g. Retry-After), ("header", name, value) to forward but rewrite one response
header, a float: seconds to wait before forwarding (a slow registry), or a function from the
upstream's body to the body to send (a registry that answers nonsense, with a
Docker-Content-Digest that matches it).  Each fault
fires `count` times, then the proxy forwards normally; fired() counts how often one did,
`ranges` lists the (path, Range header) of every request that sent one.
"""
import hashlib
import http.client
import http.server
import re
import socket
import struct
import threading
import time


def _reset(sock):
    """Close with an RST (SO_LINGER 0), as a dropped connection looks to the peer."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that went away (a killed process) is no error of the proxy's."""
        import sys
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class FaultProxy:
    def __init__(self, upstream):
        self.upstream = upstream            # "127.0.0.1:PORT"
        self.faults = []
        self.hits = []
        self.ranges = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else None

            def _forward(self):
                body = self._read_body()
                if self.headers.get("Range"):
                    with proxy._lock:
                        proxy.ranges.append((self.path, self.headers["Range"]))
                fault = proxy._take(self.command, self.path)
                if isinstance(fault, float):
                    time.sleep(fault)
                elif isinstance(fault, int) or (isinstance(fault, tuple)
                                                and isinstance(fault[0], int)):
                    status, extra = (fault, {}) if isinstance(fault, int) else fault
                    self.send_response(status)
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "transfer-encoding", "content-length")}
                headers["Host"] = proxy.upstream
                if fault == "norange":          # a registry that ignores Range: 200, all
                    headers = {k: v for k, v in headers.items() if k.lower() != "range"}
                if fault == "reset":            # the registry never sees the request
                    self.close_connection = True
                    _reset(self.connection)
                    return
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                if fault == "lost":             # the registry did it; the answer is lost
                    self.close_connection = True
                    _reset(self.connection)
                    return
                if fault == "corrupt" and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                elif callable(fault):
                    data = fault(data)
                self.send_response(response.status)
                rewrite = fault if isinstance(fault, tuple) and fault[0] == "header" else None
                for key, value in response.getheaders():
                    if rewrite and key.lower() == rewrite[1].lower():
                        value = rewrite[2]
                    if callable(fault) and key.lower() == "docker-content-digest":
                        # a registry that serves nonsense digests it consistently
                        value = "sha256:" + hashlib.sha256(data).hexdigest()
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value.replace(proxy.upstream, proxy.address))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if fault == "cut":
                    self.wfile.write(data[:len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _take(self, method, path):
        with self._lock:
            self.hits.append((method, path))
            for fault in self.faults:
                if fault[0] == method and re.search(fault[1], path) and fault[3] > 0:
                    fault[3] -= 1
                    return fault[2]
        return None

    def add(self, method, pattern, kind, count=1):
        with self._lock:
            self.faults.append([method, pattern, kind, count, count])

    def fired(self, method=None):
        """How many faults fired (those for `method` only, when given)."""
        with self._lock:
            return sum(f[4] - f[3] for f in self.faults if method in (None, f[0]))

    def count(self, method, pattern):
        """Requests seen for method on a path matching pattern."""
        with self._lock:
            return sum(1 for m, path in self.hits if m == method and re.search(pattern, path))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
