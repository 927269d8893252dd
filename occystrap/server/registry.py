"""RegistryServer: the embedded registry's life cycle, hooks and pushed state."""
import logging
import re
import socket
import ssl
import threading
import time

from .blobstore import BlobStore
from .handler import Handler
from .httpd import Server
from .manifests import check_manifest
from .protocol import RegistryHTTPError
from .uploads import Upload

LOG = logging.getLogger(__name__)

_UUID_RE = re.compile(r"^[0-9a-f-]{36}$")


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
                 keep_manifests=True, accept_indexes=False):
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
        self.accept_indexes = accept_indexes    # indexes whose children were pushed here
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
        handler = type("Handler", (Handler,), {"registry": self})
        self.store = BlobStore(self.blob_dir)
        try:
            self._httpd = Server((self.host, self.requested_port), handler, self.ssl_context,
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
        known = (lambda digest: self.pushed_manifest(name, digest) is not None) \
            if self.accept_indexes else None
        media_type, digest = check_manifest(body, reference, header_type,
                                            lambda digest: self.blob_known(name, digest),
                                            known)
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
