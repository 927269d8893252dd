"""A small embedded OCI-distribution registry: the push target of `proxy` and `dockerpush://`.

It implements the push half of the distribution API (spec "Pushing blobs", "Pushing
manifests") plus the reads a pushing client makes afterwards:

    GET  /v2/                                   200 {} (API version check)
    HEAD/GET /v2/<name>/blobs/<digest>          from the blob store, else the hooks
    POST /v2/<name>/blobs/uploads/              202 session; ?mount=&from= 201 when known;
                                                ?digest= with a body: monolithic, 201
    GET/PATCH/PUT/DELETE .../uploads/<uuid>     status, append (Content-Range checked,
                                                416 when it does not continue the upload),
                                                finish (sha256 verified), cancel
    PUT  /v2/<name>/manifests/<ref>             the on_manifest hook, then 201
    HEAD/GET /v2/<name>/manifests/<ref>         the manifest_lookup hook, else what was pushed
    GET  /v2/<name>/tags/list                   tags pushed here

Blobs stream to files in a private directory (never a whole blob in RAM), are
content-addressed and shared by every push (two images with a common base layer upload
it once, or mount it), kept for the server's life and removed by close().  Every
response header has CR and LF stripped (CWE-113; 0.4.17's SafeHeaderMixin), and
repository names, tags and digests are validated before they can reach a header.
Errors use the distribution error format {"errors": [{"code", "message", "detail"}]}.

The server speaks HTTP/1.1 with keep-alive on a ThreadingHTTPServer (one thread per
connection, each with a socket timeout), over plain HTTP or, given a certificate and
key, HTTPS.  transports/pushed.py's PushedImage turns a received manifest into an
ImageSource, so api.copy() can run a pushed image through filters into any sink.

Modules: registry.py (RegistryServer), handler.py (routing, bodies, answers), httpd.py
(connections), blobstore.py, uploads.py, manifests.py (each a store or check plus its
endpoints), protocol.py (errors and name/tag/digest checks).
"""
from .protocol import BlobStream, RegistryHTTPError
from .registry import RegistryServer

__all__ = ["BlobStream", "RegistryHTTPError", "RegistryServer"]
