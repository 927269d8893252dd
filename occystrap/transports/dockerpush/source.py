"""dockerpush:// source: the daemon pushes the image into an embedded HTTPS registry.

Why: `GET /images/{name}/get` (docker://) makes the daemon write one uncompressed
tarball, layers in one stream with the manifest at the end.  A push instead uploads
the layers compressed, several at a time, and each lands in its own blob file here,
which the copy can then read in parallel (spec B.13/B.14).

The steps: inspect the image (a missing one fails before anything starts), make a
throw-away certificate (tlscert.py), start server.RegistryServer on
127.0.0.1:<ephemeral> over HTTPS, tag the image `127.0.0.1:<port>/<name>:<tag>`,
`POST /images/<that>/push` with an empty auth (`X-Registry-Auth: e30=`, base64 "{}")
and read the JSON-lines progress until it ends, then take the manifest the push PUT.
The temporary tag is ALWAYS removed again (finally).  The blobs stay in the server's
blob store (temp files) until close().

Fixed from 0.4.17 (E.2 #10): podman verifies TLS even for 127.0.0.1, so the push
carries `tlsVerify=false` (podman's compat API honours it; dockerd ignores it and
treats 127.0.0.0/8 as an insecure registry anyway).  The manifest wait is 300 s,
not 10 s, and no blob is decompressed up front: the layer pipeline does that while
copying.
"""
import logging
import shutil
import threading
import urllib.parse

import urllib3

from ...errors import InputError
from ...server import RegistryServer
from ...unixhttp import error_message
from ..docker.api import progress_messages
from ..docker.source import DaemonSource
from ..pushed import PushedImage
from ..registry.reference import NAME_RE, TAG_RE
from .tlscert import make_certificate

LOG = logging.getLogger(__name__)

MANIFEST_TIMEOUT = 300.0        # after the push stream ends; 0.4.17 gave up after 10 s
PUSH_READ_TIMEOUT = 300.0       # silence allowed between two progress lines of the push
HANDLER_TIMEOUT = 120.0         # socket timeout of one registry connection
EMPTY_AUTH = "e30="             # base64 of "{}": no credentials for our own registry


def push_repository(name):
    """The repository the daemon pushes to: the image name made valid for a registry
    path (lower case, a host's `:port` becomes `-port`)."""
    repository = name.lower().replace(":", "-")
    return repository if NAME_RE.match(repository) else "occystrap/image"


class DockerPushSource(DaemonSource):
    _server = None
    _pushed = None

    def _fetch(self, api, ref, inspected, temp_dir):
        self._manifest_seen = threading.Event()
        self._start_server(temp_dir)
        repository = push_repository(self.image)
        push_tag = self.tag if TAG_RE.match(self.tag) else "latest"
        target = "%s/%s" % (self._server.netloc, repository)
        api.tag(inspected.get("Id") or ref, target, push_tag)
        try:
            LOG.info("Pushing %s from the daemon to %s:%s", ref, target, push_tag)
            _push(api, target, push_tag)
            body, media_type = self._wait_manifest(repository, push_tag)
        finally:
            _untag(api, "%s:%s" % (target, push_tag))
        self._server.stop_accepting()
        self._image = PushedImage(self._server, self.image, body, media_type, self.tag)

    def _start_server(self, temp_dir):
        cert_dir = make_certificate(temp_dir)
        try:
            # The server loads the key into its SSL context here; the files can go.
            self._server = RegistryServer(
                temp_dir, "127.0.0.1", 0, certfile=cert_dir + "/cert.pem",
                keyfile=cert_dir + "/key.pem", timeout=HANDLER_TIMEOUT,
                on_manifest=self._on_manifest)
        finally:
            shutil.rmtree(cert_dir, ignore_errors=True)
        try:
            self._server.start()
        except OSError as exc:
            self._server = None
            raise InputError("cannot start the embedded registry on 127.0.0.1: %s"
                             % (exc.strerror or exc)) from None

    def _on_manifest(self, name, reference, body, media_type):
        """Called by the server for each manifest PUT (the blobs are all there)."""
        if ":" not in reference and self._pushed is None:
            self._pushed = (name, reference, body, media_type)
            self._manifest_seen.set()

    def _wait_manifest(self, repository, tag):
        if not self._manifest_seen.wait(MANIFEST_TIMEOUT):
            raise InputError("the Docker daemon finished its push but no manifest reached "
                             "the embedded registry within %d s" % MANIFEST_TIMEOUT)
        name, reference, body, media_type = self._pushed
        if (name, reference) != (repository, tag):
            LOG.debug("the daemon pushed %s:%s (expected %s:%s)", name, reference,
                      repository, tag)
        return body, media_type

    # -- ImageSource ------------------------------------------------------------------------
    def close(self):
        """Stop the registry and delete every pushed blob."""
        if self._server is not None:
            self._server.close(timeout=5.0)
            self._server = None


def _push(api, target, tag):
    """`POST /images/<target>/push?tag=TAG&tlsVerify=false` and read its progress
    stream to the end; an `error` line raises InputError."""
    path = "/images/%s/push" % urllib.parse.quote(target, safe="/:@")
    response = api.client.request(
        "POST", path, query={"tag": tag, "tlsVerify": "false"}, stream=True,
        headers={"X-Registry-Auth": EMPTY_AUTH}, ok=range(100, 600),
        timeout=urllib3.Timeout(connect=10.0, read=PUSH_READ_TIMEOUT))
    if response.status != 200:
        raise InputError("Docker daemon could not push the image to the embedded registry: "
                         "%s" % error_message(response))
    try:
        for _line in progress_messages(response, InputError, "Docker daemon could not push "
                                       "the image to the embedded registry"):
            pass
    except urllib3.exceptions.HTTPError as exc:
        raise InputError("Docker daemon: reading the push progress failed: %s" % exc) from None
    finally:
        response.release_conn()
        response.close()


def _untag(api, ref):
    """Remove the temporary tag; a failure here is logged, never raised over the real
    outcome of the push."""
    try:
        api.delete(ref, noprune=True)
    except InputError as exc:
        LOG.warning("could not remove the temporary tag %s: %s", ref, exc)


__all__ = ["DockerPushSource", "push_repository"]
