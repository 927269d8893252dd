"""docker:// source: an image from the daemon's save stream, via a temporary tarball.

Why a temporary copy: the Engine API has no per-layer endpoint (moby#24851), only
`GET /images/{name}/get`, a docker-save tarball whose manifest.json (and so the layer
order and which member is which layer) comes at its *end*, after every layer.  A
streaming reader must therefore buffer layers anyway (0.4.17 did, one temp file per
layer); one seekable copy of the stream is the honest minimum, and it lets the tar://
reader do the rest: legacy saves (dockerd < 25), the OCI layout of Docker 25+, and
podman's symlinked `<id>/layer.tar -> ../<diffid>.tar` layers (on which 0.4.17
crashed, E.2 #10).  The copy lives in --temp-dir (else the system temp dir) and is
deleted on close().
"""
import os
import tempfile

from ...errors import InputError
from ..base import FetchedSource
from ..tarball.source import TarballSource
from .api import DAEMON_OPTIONS, DockerAPI, reference, socket_of


class DaemonSource(FetchedSource):
    """A source fetched from a Docker/podman daemon: the image must exist (inspect), then
    _fetch(api, ref, inspected, temp_dir) gets it; close() undoes a partial fetch."""
    OPTIONS = DAEMON_OPTIONS

    def __init__(self, name, tag, ref, socket_path, temp_dir=None, progress=None):
        self.image, self.tag = name, tag     # as the user named it (podman says localhost/…)
        self.progress = progress             # a Progress to show a long fetch on, or None
        api = DockerAPI(socket_path, InputError)
        try:
            inspected = api.inspect(ref)
            if inspected is None:
                raise InputError("Image not found: %s" % ref)
            self._fetch(api, ref, inspected, temp_dir)
        except BaseException:
            self.close()
            raise
        finally:
            api.close()

    @classmethod
    def from_uri(cls, uri, options):
        name, tag, ref = reference(uri)
        return cls(name, tag, ref, socket_of(uri), options.get("temp_dir"),
                   options.get("progress"))

    def _fetch(self, api, ref, inspected, temp_dir):
        raise NotImplementedError


class DockerSource(DaemonSource):
    _path = None

    def _fetch(self, api, ref, inspected, temp_dir):
        self._path = _save(api, ref, temp_dir, self.progress)
        self._image = TarballSource(self._path)

    def close(self):
        if self._path is not None:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            self._path = None


def _save(api, ref, temp_dir, progress=None):
    """Stream the daemon's save of ref into a new temp file; return its path.  The
    save can take seconds before the first layer is read, so progress shows it."""
    try:
        fd, path = tempfile.mkstemp(prefix=".occystrap-docker-", suffix=".tar", dir=temp_dir)
    except OSError as exc:
        raise InputError("cannot create a temporary file in %s: %s"
                         % (temp_dir or tempfile.gettempdir(), exc.strerror)) from None
    task = progress.task("docker save %s" % ref) if progress is not None else None
    try:
        with os.fdopen(fd, "wb") as fileobj:
            api.save(ref, task.counted(fileobj) if task is not None else fileobj)
    except BaseException:
        os.unlink(path)
        raise
    finally:
        if task is not None:
            task.close()
    return path
