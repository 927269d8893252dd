"""Blobs: the content-addressed store every push shares, and the handler's blob endpoints
(GET with ranges, HEAD, and blobs a hook serves from elsewhere)."""
import os
import re
import shutil
import tempfile
import threading

from .. import model
from ..errors import InputError
from .protocol import API_VERSION, CHUNK, RegistryHTTPError, check_digest


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


class BlobRoutes:
    """The /v2/<name>/blobs/<digest> endpoints, mixed into the Handler."""

    def _blob_get(self, name, digest):
        check_digest(digest)
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
        check_digest(digest)
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
