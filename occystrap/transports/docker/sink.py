"""docker:// sink: build a docker-load tarball, then `POST /images/load` it.

The tarball is written by the tar:// sink (same streaming, same layout) into a private
temporary directory (--temp-dir, else the system temp dir), with RepoTags set to the
*destination* NAME:TAG, registry host included (0.4.17 loaded the source's last path
component and tag instead, E.2 #12).  The load streams that file as the request body.
A tarball is needed because the Engine API has no per-layer upload; the daemon wants
the whole docker-save archive.  Afterwards NAME:TAG is made to point at the loaded
image (`POST /images/{id}/tag` when the daemon did not tag it itself).  Temporary
files are removed whatever happens; a refused load tags nothing.

verify() compares the daemon's image Id with `sha256:` + the digest of the config we
wrote, whatever layout the input had (0.4.17 compared against the OCI-layout member
name `blobs/sha256/…`, E.2 #11).
"""
import logging
import os
import shutil
import tempfile

from ...errors import OutputError
from ...model import sha256_digest
from ..base import ImageSink
from ..tarball.sink import TarballSink
from .api import DAEMON_OPTIONS, DockerAPI, reference, socket_of

LOG = logging.getLogger(__name__)


class DockerSink(ImageSink):
    OPTIONS = DAEMON_OPTIONS

    def __init__(self, name, tag, socket_path, temp_dir=None):
        self.name, self.tag = name, tag
        self.ref = "%s:%s" % (name, tag)
        self.socket_path = socket_path
        self.temp_dir = temp_dir
        self._api = None
        self._workdir = None
        self._tarball = None
        self._image_id = None
        self._diff_ids = None

    @classmethod
    def from_uri(cls, uri, options):
        name, tag, ref = reference(uri)
        if "@" in uri.path:
            raise OutputError("docker:// output needs NAME[:TAG], not a digest: %s" % ref)
        return cls(name, tag, socket_of(uri), options.get("temp_dir"))

    def begin(self, source):
        self._api = DockerAPI(self.socket_path, OutputError)
        self._api.ping()                        # fail now, not after every layer is built
        try:
            self._workdir = tempfile.mkdtemp(prefix=".occystrap-docker-", dir=self.temp_dir)
        except OSError as exc:
            raise OutputError("cannot create a temporary directory in %s: %s"
                              % (self.temp_dir or tempfile.gettempdir(), exc.strerror)) from None
        self._tarball = TarballSink(os.path.join(self._workdir, "image.tar"))
        self._tarball.begin(source)
        self._tarball.image, self._tarball.tag = self.name, self.tag   # RepoTags

    def open_layer(self, ref):
        return self._tarball.open_layer(ref)

    def finish(self, config_bytes, results):
        self._tarball.finish(config_bytes, results)
        self._image_id = sha256_digest(config_bytes)
        self._diff_ids = [r.diff_id for r in results]
        path = self._tarball.path
        try:
            with open(path, "rb") as fileobj:
                loaded = self._api.load(fileobj, os.fstat(fileobj.fileno()).st_size)
        finally:
            self._cleanup()
        LOG.debug("daemon loaded %s", ", ".join(loaded) or "(nothing reported)")
        inspected = self._api.inspect(self.ref)
        if inspected is None or inspected.get("Id") != self._image_id:
            # e.g. a daemon that loads by ID only; never expected from dockerd or podman
            self._api.tag(self._image_id, self.name, self.tag)

    def verify(self, full=False):
        """The daemon's NAME:TAG must be the image whose config we wrote."""
        try:
            inspected = self._api.inspect(self.ref)
        except OutputError as exc:
            return [str(exc)]
        if inspected is None:
            return ["Image %s not found in the daemon after load" % self.ref]
        errors = []
        if inspected.get("Id") != self._image_id:
            errors.append("Image ID mismatch: expected %s, got %s"
                          % (self._image_id, inspected.get("Id")))
        layers = (inspected.get("RootFS") or {}).get("Layers")
        if layers is not None and layers != self._diff_ids:
            errors.append("Layer diff_ids mismatch for %s" % self.ref)
        return errors

    def _cleanup(self):
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def abort(self):
        if self._tarball is not None:
            self._tarball.abort()
        self._cleanup()

    def close(self):
        self._cleanup()
        if self._api is not None:
            self._api.close()
            self._api = None
