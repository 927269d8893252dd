"""The distribution protocol's vocabulary shared by the server's modules: limits, the
error answer, header hygiene, and the checks every name, tag and digest passes before it
can reach a header or a file name."""
import json
import re

# Names and tags: the distribution grammar's one home is the registry reference parser.
from ..transports.registry.reference import NAME_RE, TAG_RE

CHUNK = 1 << 20
API_VERSION = "registry/2.0"

DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_ANY_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


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


def check_name(name):
    if len(name) > 255 or not NAME_RE.match(name):
        raise RegistryHTTPError(400, "NAME_INVALID", "invalid repository name",
                                detail={"name": name})


def check_digest(digest):
    if not DIGEST_RE.match(digest):
        what = ("unsupported digest algorithm" if _ANY_DIGEST_RE.match(digest)
                else "invalid digest")
        raise RegistryHTTPError(400, "DIGEST_INVALID", what, detail={"digest": digest})


def check_reference(reference):
    if ":" in reference:
        check_digest(reference)
    elif not TAG_RE.match(reference):
        raise RegistryHTTPError(400, "TAG_INVALID", "invalid tag",
                                detail={"reference": reference})
