"""A fault-injecting HTTP proxy in front of a real registry, for the failures a healthy
registry never produces: corrupted blobs, connections cut mid-body, 5xx bursts.

Faults are (method, path regex, kind, count): kind is "corrupt" (flip one body byte),
"cut" (send half the body, then close), an int status to answer instead, a float:
seconds to wait before forwarding (a slow registry), or a function from the upstream's
body to the body to send (a registry that answers nonsense).  Each
fault fires `count` times, then the proxy forwards normally.
"""
import http.client
import http.server
import re
import threading
import time


class FaultProxy:
    def __init__(self, upstream):
        self.upstream = upstream            # "127.0.0.1:PORT"
        self.faults = []
        self.hits = []
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
                fault = proxy._take(self.command, self.path)
                if isinstance(fault, float):
                    time.sleep(fault)
                elif isinstance(fault, int):
                    self.send_response(fault)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "transfer-encoding", "content-length")}
                headers["Host"] = proxy.upstream
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                conn.close()
                if fault == "corrupt" and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                elif callable(fault):
                    data = fault(data)
                self.send_response(response.status)
                for key, value in response.getheaders():
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

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
            self.faults.append([method, pattern, kind, count])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
