"""The ThreadingHTTPServer under the registry: one thread per connection, TLS handshakes
off the accept loop, and the bookkeeping that lets close() cut idle keep-alive
connections while a busy one finishes its answer."""
import logging
import socket
import threading
from http.server import ThreadingHTTPServer

LOG = logging.getLogger(__name__)


class Server(ThreadingHTTPServer):
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
                # The handshake happens in the connection's thread (Handler.setup), so a
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
