"""What every transport provides: an ImageSource to read from, an ImageSink to write to.

Sources are lazy: nothing is read until a layer is opened.  Sinks take each layer as a
stream (open_layer -> write -> commit) and learn the layer's digest only at its end,
like go-containerregistry's streaming layers; api.copy alone owns threads and order.
"""
import dataclasses
import logging
import os
import threading
import time
from typing import Callable, Optional

from ..model import platforms
from ..model.tree import Descriptor


@dataclasses.dataclass
class LayerRef:
    """One layer of a source image, not yet read."""
    index: int
    name: str                       # the element name 0.4.17 used (search/inspect output)
    open: Callable                  # () -> binary file object of the blob as stored
    diff_id: Optional[str] = None   # sha256:... of the uncompressed tar, from the config
    digest: Optional[str] = None    # sha256:... of the blob as stored, when known
    size: Optional[int] = None      # stored size, when known
    media_type: Optional[str] = None
    compression: Optional[str] = None   # gzip / zstd / none; None = sniff
    descriptor: Optional[Descriptor] = None  # the manifest's entry, for a tree source
    tail: Optional[Callable] = None     # (count) -> the blob's last bytes or None (blob_tail)

    def as_descriptor(self):
        """The layer's descriptor: the manifest's own, or one from the known fields."""
        if self.descriptor is not None:
            return self.descriptor
        return Descriptor(self.media_type or "", self.digest, self.size,
                          {"mediaType": self.media_type, "digest": self.digest,
                           "size": self.size})


@dataclasses.dataclass
class LayerResult:
    """A layer as written: digests of what the sink received."""
    index: int
    diff_id: str                    # sha256:... of the (rewritten) uncompressed tar
    size: int                       # uncompressed size
    digest: str                     # sha256:... of the blob as stored by the sink
    blob_size: int
    media_type: str
    source: LayerRef = None
    members: int = 0
    dropped: int = 0
    error: str = None               # why the layer could not be read (read-only runs)


def usable_cpus():
    """CPUs this process may run on (taskset and cgroup cpusets are honoured)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                  # not on Linux
        return os.cpu_count() or 1


def layer_threads(parallel, source, sink=None):
    """Threads for the layers: -j (0 means automatic: the usable CPUs), but no more
    than the usable CPUs when no side is on the network.  Local layer work is
    CPU-bound, and threads beyond the cores only contend (measured: -j 2 beats -j 4
    by ~10% on 2 cores for tar -> tar)."""
    cpus = usable_cpus()
    if not parallel:
        return cpus
    if source.network or (sink is not None and sink.network):
        return parallel
    return max(1, min(parallel, cpus))


LOG = logging.getLogger(__name__)


class Helpers:
    """The threads a sink needs beside the copier's layer threads: an upload's sender,
    a background expansion.  The copier makes one Helpers per copy and hands it to the
    sink (ImageSink.helpers) before anything starts, and joins whatever still runs when
    the copy ends, so no thread outlives its copy."""

    def __init__(self):
        self._lock = threading.Lock()
        self._threads = set()

    def start(self, target, *args, name="occystrap-helper"):
        thread = threading.Thread(target=self._run, args=(target, args), name=name,
                                  daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def _run(self, target, args):
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    @property
    def running(self):
        with self._lock:
            return len(self._threads)

    def join(self, timeout=10.0):
        """Wait for every helper, at most timeout seconds in all (one blocked in a
        network read is abandoned, as a daemon thread, rather than hang the exit)."""
        with self._lock:
            threads = list(self._threads)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self.running:
            LOG.debug("%d helper thread(s) still running after the copy", self.running)


def wanted_platforms(uri, options):
    """The platforms a source URI (`?platform=`) or --platform asks for: None (pick one
    image as 0.4.17 did), "all" or a list (platforms.parse_platforms)."""
    return platforms.parse_platforms(uri.options.get("platform") or options.get("platform"))


class ImageSource:
    """Base class for sources; subclasses set image/tag and implement the readers.

    A source that stores distribution manifests (registry://, ocidir://) also has the
    descriptor tree: root() is its ImageIndex or ImageManifest as read, child(desc)
    an index entry's ImageManifest, open_blob(desc) a blob as stored, `origin` where
    its blobs live for mounts; root() is None for the others (one image, no stored
    manifest: tar://, dir://, docker://)."""
    OPTIONS = {}        # the URI query options accepted: {name: value type} (uri.py)
    OPTION_ALIASES = {}     # other spellings of them: {alias: name}
    image = "unknown"   # the name scripts see: a registry's repository path, as in 0.4.17
    tag = "unknown"
    registry = None     # the registry host of a registry source (image leaves it out)
    network = False     # layers come over the network: -j threads may all wait on I/O
    local_path = None   # the local file read, if any (copy() never writes over it)

    @property
    def qualified_image(self):
        """image with its registry host: what RepoTags carry, so that a saved image
        keeps where it came from (docs/compatibility.md)."""
        return "%s/%s" % (self.registry, self.image) if self.registry else self.image

    manifest_media_type = None  # the media type of manifest(), when there is one
    manifest_raw = None         # and its bytes as stored
    platforms = None            # what --platform / ?platform= asked for (wanted_platforms)

    def root(self):
        return None

    def referrers(self, digest):
        """[(tag or None, node)] of the manifests that refer to digest (signatures,
        SBOMs, attestations) where the source keeps them; none by default."""
        return []

    def blob_tail(self, desc, count):
        """The last count bytes of desc's blob, read without the rest (the Summary's
        size of a blob the destination already has), or None where that is not cheap."""
        return None

    def manifest(self):
        """The distribution manifest as a dict, or None when the format has none."""
        return None

    def config_bytes(self):
        raise NotImplementedError

    def layers(self):
        """LayerRefs in manifest order."""
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FetchedSource(ImageSource):
    """A source that first fetches the image (docker save, a daemon push) and then reads
    it like another source, `self._image`, its descriptor tree included (a daemon's
    push has one, so it can be copied on as stored)."""
    _image = None

    def root(self):
        return self._image.root()

    def child(self, desc):
        return self._image.child(desc)

    def open_blob(self, desc):
        return self._image.open_blob(desc)

    def blob_tail(self, desc, count):
        return self._image.blob_tail(desc, count)

    def referrers(self, digest):
        return self._image.referrers(digest)

    def image_of(self, node):
        return self._image.image_of(node)

    @property
    def selected(self):
        return self._image.selected

    @property
    def platforms(self):
        return self._image.platforms

    @property
    def manifest_media_type(self):
        return self._image.manifest_media_type

    @property
    def manifest_raw(self):
        return self._image.manifest_raw

    def manifest(self):
        return self._image.manifest()

    def config_bytes(self):
        return self._image.config_bytes()

    def layers(self):
        return self._image.layers()


class RestartLayer(Exception):
    """Raised by a LayerWriter (write or commit) when the destination lost part of the
    stream that the writer no longer holds: api.copy makes the layer again from the
    source into a new writer.  A sink raises it only while its retry budget for the
    layer lasts, so the loop ends; the cause (__cause__) says what failed."""


class LayerWriter:
    """A sink's receiver for one layer stream."""

    def write(self, data):
        raise NotImplementedError

    def commit(self, result):
        """The stream is complete; result is the LayerResult (digests now known)."""
        raise NotImplementedError

    def abort(self):
        raise NotImplementedError


class ImageSink:
    """Base class for sinks."""
    OPTIONS = {}        # as ImageSource.OPTIONS
    OPTION_ALIASES = {}
    compression = "none"            # what the sink stores: none / gzip / zstd
    compression_level = None        # None: the codec's fast default
    layer_media_type = "application/vnd.docker.image.rootfs.diff.tar"
    network = False     # layers go over the network (see ImageSource.network)
    local_path = None   # the local file the output replaces, if any

    def begin(self, source):
        """Called once before any layer, with the source (for names)."""

    def open_layer(self, ref):
        raise NotImplementedError

    holds_index = False     # writes several images and an index (registry, ocidir)
    stores_manifests = False    # writes manifests as given: byte-exact copies possible
    requested_compression = None    # what the user asked for; None: keep the source's
    blob_origin = None      # Origin of the blobs it writes, when others may mount them
    blob_scope = None       # where its blobs live, for copies that share them (api.Shared)
    helpers = Helpers()     # the copier gives each copy its own (api.copy)
    scheme = None           # set by transports.register
    reference = None        # a tree sink's tag; None while an index's child is written
    last_manifest = None    # (digest, size, media type) of the manifest finish() wrote
    tagged_digest = None    # digest of what was put under the sink's own reference
    provenance = None       # annotations for the manifest finish() builds (model.tree)

    def current_digest(self):
        """The digest the destination's reference names now (before the copy), or
        None when it names nothing or the sink cannot tell: sync's unchanged test."""
        return None

    def current_annotations(self):
        """(digest, annotations) of what the destination's reference names now, or
        None: how sync finds a rewritten image it would make again."""
        return None

    def try_reuse(self, desc):
        """True when the destination already has desc's blob (or mounted it from
        desc.origin), so nothing needs to be sent."""
        return False

    def put_blob(self, desc, stream):
        """Store the blob desc from stream (a file object), as it is: a sink that
        stores_manifests."""
        raise NotImplementedError

    def put_manifest(self, raw, media_type, reference):
        """Store manifest bytes as given under reference (a tag, or its digest)."""
        raise NotImplementedError

    def put_index(self, raw, media_type, reference):
        """Store an index's bytes, after all of its children."""
        raise NotImplementedError

    def finish(self, config_bytes, results):
        """All layers committed: write the config/manifest and make the output visible."""
        raise NotImplementedError

    def abort(self):
        """Remove everything half-written."""

    def verify(self, full=False):
        """Re-read what was written; return a list of error strings."""
        return []

    def close(self):
        """Release connections; called once the copy (and verification) is over."""
