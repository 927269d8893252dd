"""Upload sessions: a temp file in the blob store per push of a blob, and the handler's
/blobs/uploads/ endpoints (POST, mount, monolithic, chunked PATCH, PUT, cancel)."""
import hashlib
import os
import re
import tempfile
import threading
import time
import uuid

from .protocol import RegistryHTTPError, check_digest

_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


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


class UploadRoutes:
    """The /v2/<name>/blobs/uploads/ endpoints, mixed into the Handler."""

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
            check_digest(mount)
            if registry.blob_known(name, mount):
                self._drain()
                return self._blob_created(name, mount)
        digest = self.query.get("digest", [None])[0]
        if digest:                                  # monolithic upload: POST ?digest= + body
            check_digest(digest)
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
        check_digest(digest)
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
