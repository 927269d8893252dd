"""Library surface: copy an image from a source to a sink through filters.

copy() alone owns threads, ordering and the summary (design: one copier owns
concurrency, as in containers/image).  Layers run in a thread pool; the sink decides
how concurrent writes land (tar spools, dir renames).  On any failure the sink is
aborted, so nothing half-written stays behind.
"""
import concurrent.futures
import dataclasses
import json
import logging
import threading
import time
import uuid

from . import storedsize
from .cache import CopyCache, filters_hash, open_cache
from .compression import from_media_type
from .errors import InputError, IntegrityError, LayerError, OutputError
from .filters import build_filter
from .jsonparse import parse_json
from .layers import copy_blob, run_layer
from .model import config_diff_ids, sha256_digest
from .model.tree import PLATFORMS_KEY, REWRITE_KEY, SOURCE_KEY
from .progress import Progress
from .transports import checked, open_sink, open_source
from .transports.base import (Helpers, ImageSink, LayerResult, LayerWriter, RestartLayer,
                              layer_threads)
from .transports.outpath import same_file
from .uri import parse_uri

LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class CopyReport:
    layers: int
    bytes: int
    seconds: float
    results: list
    verify_errors: list = None      # None when verification did not run
    reused: int = 0                 # layers the destination already had (not sent)
    uploaded_bytes: int = 0         # stored bytes of the layers written
    digest: str = None              # of the manifest or index written under the tag


def rewrite_config(config_bytes, results, filters=()):
    """Config with rootfs.diff_ids replaced by the written layers' ids and the filters'
    edits (bytes unchanged when nothing changed, so an unfiltered copy keeps its config
    digest).  A source with no config (None) has nothing to rewrite."""
    if config_bytes is None:
        return None
    try:
        config = parse_json(config_bytes)
        old = config_diff_ids(config)
    except ValueError as exc:
        raise InputError("image config is not valid: %s" % exc) from None
    new = [r.diff_id for r in results]
    edited = parse_json(config_bytes)
    for filt in filters:
        filt.edit_config(edited)
    if old == new and edited == config:
        return config_bytes
    config = edited
    if not isinstance(config.get("rootfs"), dict):         # absent or null
        config["rootfs"] = {"type": "layers"}
    config["rootfs"]["diff_ids"] = new
    return json.dumps(config).encode()


def copy(source, sink, filters=(), parallel=4, verify=True, verify_full=False, out=None,
         layer_cache=None, started=None, damaged=None, progress=None, referrers=False,
         shared=None, cancel=None, sizes=True):
    """Copy source to sink through filters; return a CopyReport.

    A source with a descriptor tree goes through imageset.copy_tree (indexes, byte-
    exact copies); the others through copy_image.  layer_cache (a cache.LayerCache)
    lets a sink that reuses blobs by digest skip layers an earlier run already
    produced.  started (time.monotonic()) is when the caller began opening the source,
    so the report's time includes e.g. a daemon push.  damaged (a list), for read-only
    sinks: layers that do not hash to their diff_id are appended to it as
    IntegrityErrors instead of stopping the copy; progress is the caller's Progress
    when it already showed the source being opened; referrers: copy the source's
    referrers too (imageset); shared, a Shared that other copies into the same
    destination use too (sync), so a blob they share is made and sent once; cancel,
    an Event whose setting stops the copy at its next chunk (a signalled sync); sizes:
    read the uncompressed size of each layer the destination already has from its last
    bytes at the source (a small read each: sync, which shows no size, goes without)."""
    from .imageset import copy_tree, uses_tree
    start = time.monotonic() if started is None else started
    own_progress = progress is None
    if own_progress:
        progress = Progress()
    run = Run(filters, parallel, progress, layer_cache, damaged, out)
    run.referrers = referrers
    if shared is not None:
        run.shared = shared
    run.cancel = cancel
    run.sizes = sizes
    run.scope = sink.blob_scope if sink.blob_scope is not None else _own_scope(sink)
    run.codec = (sink.requested_compression, sink.compression, sink.compression_level)
    sink.helpers = run.helpers      # the sink's own threads are the copy's too
    try:
        _refuse_overlaps(source, sink, filters)
        try:
            if uses_tree(source, sink):
                results = copy_tree(source, sink, run)
            else:
                results = copy_image(source, sink, run).results
        except BaseException:
            sink.abort()
            raise
        finally:
            if own_progress:
                progress.close()
            run.close()
        errors = sink.verify(verify_full) if verify or verify_full else None
    finally:
        sink.close()
        run.helpers.join()
    return CopyReport(layers=len(results), bytes=sum(r.size or r.blob_size for r in results),
                      seconds=time.monotonic() - start, results=results,
                      verify_errors=errors, reused=progress.reused,
                      uploaded_bytes=progress.uploaded_bytes, digest=sink.tagged_digest)


def _own_scope(sink):
    """A scope for a sink whose blobs no other sink can see: unique to this sink object
    (id() would be reused by the next sink once this one is freed)."""
    return sink.__dict__.setdefault("_own_scope", ("sink", uuid.uuid4().hex))


class Shared:
    """Blobs made once, as futures: keyed by (destination, rewrite, source digest), so
    copies into one destination that share it (a sync's images) share their layers."""

    def __init__(self):
        self._lock = threading.Lock()
        self._made = {}

    def once(self, key, make):
        with self._lock:
            future = self._made.get(key)
            mine = future is None
            if mine:
                future = self._made[key] = concurrent.futures.Future()
        if not mine:
            return future.result(), True
        try:
            result = make()
        except BaseException as exc:
            with self._lock:
                del self._made[key]
            future.set_exception(exc)
            raise
        future.set_result(result)
        return result, False


class Run:
    """What one copy shares across the images it writes: the filters, threads,
    progress, layer cache, and the layers already written (a layer two platforms
    share is rewritten once)."""

    def __init__(self, filters, parallel, progress, layer_cache=None, damaged=None,
                 out=None):
        self.filters = list(filters)
        for position, filt in enumerate(self.filters):
            # observers after a content filter see (and name layers by) the rewritten layer
            filt.after_rewrite = any(f.changes_content for f in self.filters[:position])
        self.parallel = parallel
        self.progress = progress
        self.layer_cache = layer_cache
        self.damaged = damaged
        self.out = out              # where observers (search, inspect) report
        self.shared = Shared()      # what was made once (see once); a sync shares one
        self.cancel = None          # an Event that stops the copy at its next chunk
        self.scope = None           # the destination the made blobs live in
        self.codec = None           # (asked, compression, level) the sink writes them with
        self.rewrite = tuple(f.cache_token for f in self.filters if f.changes_content)
        self.referrers = False      # --referrers: copy what refers to the images too
        self.sizes = True           # read reused layers' sizes from their tails (copy())
        self.helpers = Helpers()    # the sink's threads (upload senders, expansion)
        self._caches = []

    @property
    def changes_content(self):
        return any(f.changes_content for f in self.filters)

    def once(self, digest, make):
        """(result, shared): make() the first time a blob digest (or another key) is
        asked for in this run, or in any run sharing its Shared table into the same
        destination; whoever asks later (another platform, another image of a sync)
        waits for that result and shares it.  A maker claims the key as it starts and
        never waits itself, so a waiter only ever waits for work that is running."""
        if not digest:
            return make(), False
        return self.shared.once((self.scope, self.codec, self.rewrite, digest), make)

    def cache_for(self, sink):
        """The run's CopyCache for sink: one for all the images it writes, so its
        counts are the run's."""
        for cached in self._caches:
            if cached.sink is sink:
                return cached
        cached = CopyCache.for_copy(self.layer_cache, sink, self.filters)
        if cached is not None:
            self._caches.append(cached)
        return cached

    def close(self):
        for cached in self._caches:
            LOG.info(cached.summary())


@dataclasses.dataclass
class ImageResult:
    results: list           # LayerResults in manifest order
    config_bytes: bytes
    manifest: tuple = None  # (digest, size, media type) the sink wrote, when it says


def copy_image(source, sink, run):
    """Copy one image (source: an ImageSource) through run's filters into sink and
    finish it there (its manifest under the sink's reference)."""
    return copy_images([source], sink, run)[0]


def copy_images(images, sink, run):
    """Copy images (ImageSources of one format) into sink: their layers in one pool, so
    one platform's layers start while another's still run, then each image finished
    in order (config, manifest, the filters' reports); returns [ImageResult]."""
    refs = [image.layers() for image in images]
    sink.begin(images[0])   # inside: a begin cut short (a signal) is cleaned up too
    cached = run.cache_for(sink)
    run.progress.layers += sum(len(image_refs) for image_refs in refs)
    flat = [ref if run.sizes else dataclasses.replace(ref, tail=None)
            for image_refs in refs for ref in image_refs]
    results = _run_layers(flat, run.filters, sink, layer_threads(run.parallel, images[0], sink),
                          run.progress, cached, run.damaged, run.once, run.cancel)
    done = []
    for image, image_refs in zip(images, refs):
        mine, results = results[:len(image_refs)], results[len(image_refs):]
        if len(images) > 1:
            sink.begin(image)           # the image's own manifest format
        config_bytes = rewrite_config(image.config_bytes(), mine, run.filters)
        sink.provenance = provenance(
            sha256_digest(image.manifest_raw) if image.manifest_raw else None,
            run.filters, sink)
        sink.finish(config_bytes, mine)
        for filt in run.filters:        # each image's report (one per platform of an index)
            filt.finish(image, mine, run.out)
            filt.stages.clear()
        done.append(ImageResult(mine, config_bytes, sink.last_manifest))
    return done


def provenance(source_digest, filters, sink, platforms=None):
    """The annotations of an image (or index) rewritten from source_digest: the source
    and what the rewrite was (the filters' cache tokens, codec and level, as the layer
    cache keys them), so a later run finds it with one manifest request; None when
    nothing is rewritten or the source has no digest."""
    if source_digest is None or not any(f.changes_content for f in filters):
        return None
    annotations = {SOURCE_KEY: source_digest,
                   REWRITE_KEY: filters_hash(filters, sink.compression,
                                             sink.compression_level)}
    if platforms is not None:
        annotations[PLATFORMS_KEY] = platforms
    return annotations


def _refuse_overlaps(source, sink, filters):
    """No file this copy writes may be one it reads or writes otherwise: the output over
    the input replaces it with (a filtered copy of) itself, and an inspect record
    appended to either corrupts it.  Checked before anything is written, however the
    paths are spelled (hard links, symlinks)."""
    checks = [("Output", sink.local_path, [("the input file", source.local_path)])]
    checks += [("%s file" % filt.name, filt.local_path,
                [("the input file", source.local_path), ("the output", sink.local_path)])
               for filt in filters]
    for what, path, others in checks:
        for other, other_path in others:
            if path and other_path and same_file(path, other_path):
                raise OutputError("%s %s is %s %s" % (what, path, other, other_path))


class CopyStopped(Exception):
    """A layer thread gave up because the copy already failed (or was signalled)."""


class _StoppableWriter(LayerWriter):
    """Passes writes through until the copy stops, then raises: the other layer threads
    give up at their next chunk, so a signal or a failed layer does not wait for every
    running layer to be copied in full before the output is cleaned up."""

    def __init__(self, writer, stop):
        self._writer = writer
        self._stop = stop

    def write(self, data):
        if self._stop.is_set():
            raise CopyStopped("copy stopped")
        self._writer.write(data)

    def commit(self, result):
        self._writer.commit(result)

    def abort(self):
        self._writer.abort()


def keeps_blob(ref, sink):
    """Whether a layer no filter changes goes to sink as the source stores it: the
    sink compresses, and the layer is compressed as the user asked (or, with no
    --compression, compressed at all)."""
    stored = from_media_type(ref.media_type)
    return bool(ref.digest and ref.diff_id and sink.compression != "none"
                and stored in ("gzip", "zstd")
                and stored == (sink.requested_compression or stored))


def _one_layer(ref, filters, sink, progress, cached=None, stop=None, damaged=None,
               once=None):
    if once is None:
        return _make_layer(ref, filters, sink, progress, cached, stop, damaged)
    # the filters that run on this layer are part of what it becomes (skip=N leaves a
    # base layer as it is in one image and may rewrite the same blob higher in another)
    applied = tuple(position for position, f in enumerate(filters) if f.applies_to(ref))
    result, shared = once((ref.digest, applied) if ref.digest else None,
                          lambda: _make_layer(ref, filters, sink, progress, cached, stop,
                                              damaged))
    if shared:                                  # another platform's layer, made once
        result = dataclasses.replace(result, index=ref.index, source=ref)
        progress.layer_done(result, reused=True)
    return result


def _make_layer(ref, filters, sink, progress, cached, stop, damaged):
    filters = [f for f in filters if f.applies_to(ref)]
    same_blob = not filters and keeps_blob(ref, sink)
    reused = None
    if same_blob:       # stored as the sink would store it: its digest is already known
        cached = None
        if sink.try_reuse(ref.as_descriptor()):
            size = storedsize.reused_size(ref.media_type, ref.size, ref.tail)
            reused = LayerResult(index=ref.index, diff_id=ref.diff_id, size=size or 0,
                                 digest=ref.digest, blob_size=ref.size or 0,
                                 media_type=ref.media_type, source=ref)
    elif cached is not None:
        reused = cached.reuse(ref)
    if reused is not None:
        progress.layer_done(reused, reused=True)
        return reused
    while True:
        try:
            result = _write_layer(ref, filters, sink, same_blob, stop, progress)
            break
        except IntegrityError as exc:
            if damaged is None:
                raise
            damaged.append(exc)         # a read-only run goes on and reports it at the end
            result = exc.result
            break
        except LayerError as exc:
            if damaged is None:
                raise
            damaged.append(exc)
            result = LayerResult(index=ref.index, diff_id=None, size=0, digest=ref.digest,
                                 blob_size=0, media_type=ref.media_type, source=ref,
                                 error=exc.reason)
            break
        except RestartLayer as exc:
            LOG.info("Layer %d (%s): %s; making it again", ref.index, ref.name,
                     exc.__cause__ or exc)
    if cached is not None:
        cached.remember(ref, result)        # keyed by this layer's own input (E.2 #6, bug A)
    progress.layer_done(result)
    return result


def _write_layer(ref, filters, sink, same_blob, stop, progress):
    """One attempt at a layer: stream it from the source into a new writer, commit."""
    writer = sink.open_layer(ref)
    if stop is not None:
        writer = _StoppableWriter(writer, stop)
    task = progress.task("layer %d/%d" % (ref.index + 1, progress.layers), ref.size)
    try:
        if same_blob:
            result = copy_blob(ref, writer, ref.media_type, task)
        else:
            result = run_layer(ref, filters, writer, sink.compression, sink.compression_level,
                               sink.layer_media_type, task)
    except BaseException:
        writer.abort()
        raise
    finally:
        task.close()
    try:
        writer.commit(result)
    except RestartLayer:
        writer.abort()
        raise
    return result


def _run_layers(refs, filters, sink, parallel, progress, cached=None, damaged=None,
                once=None, cancel=None):
    return in_pool(parallel, lambda ref, stop: _one_layer(ref, filters, sink, progress,
                                                          cached, stop, damaged, once),
                   refs, cancel)


class _Either:
    """Set when either of two events is: this pool's own stop, or the caller's cancel
    (a sync stopping every image it runs)."""

    def __init__(self, first, second):
        self._events = (first, second)

    def is_set(self):
        return any(event.is_set() for event in self._events)

    def set(self):
        self._events[0].set()


def in_pool(threads, work, items, cancel=None, name="occystrap-layer"):
    """[work(item, stop) for item in items], in up to `threads` threads, results in
    the items' order.  When one fails (or the copy is signalled) `stop` is set, so the
    others give up at their next chunk, and the first error is raised once all have
    ended; so does every item when cancel (an Event) is set.  With one thread, or one
    item, nothing is started and stop is cancel."""
    if threads == 1 or len(items) < 2:
        return [work(item, cancel) for item in items]
    stop = threading.Event() if cancel is None else _Either(threading.Event(), cancel)
    with concurrent.futures.ThreadPoolExecutor(threads, name) as pool:
        futures = [pool.submit(work, item, stop) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            concurrent.futures.wait(futures)
            raise


class StoppableReader:
    """A file object that raises CopyStopped once the copy stops: a blob copied as
    stored gives up at its next chunk, as a layer writer does (_StoppableWriter)."""

    def __init__(self, fileobj, stop):
        self._fileobj = fileobj
        self._stop = stop

    def read(self, size=-1):
        if self._stop is not None and self._stop.is_set():
            raise CopyStopped("copy stopped")
        return self._fileobj.read(size)


class _NullWriter(LayerWriter):
    def write(self, data):
        pass

    def commit(self, result):
        pass

    def abort(self):
        pass


class NullSink(ImageSink):
    """Discards the image: for read-only commands (search) that only run filters.  It
    takes an index, so `search --platform all` reads every selected platform."""
    holds_index = True
    last_manifest = (None, 0, None)

    def put_index(self, raw, media_type, reference):
        pass

    def open_layer(self, ref):
        return _NullWriter()

    def finish(self, config_bytes, results):
        pass


def copy_uris(src, dst, filter_specs=(), options=None, out=None, **overrides):
    """copy() from URI strings and `-f` filter specs; the CLI's process command.

    options are the global CLI options (parallel, verify, verify_full, and the transport
    settings such as insecure, username, password, compression); missing keys default,
    keyword overrides win.
    """
    options = dict(options or {}, **overrides)
    started = time.monotonic()
    filters = [build_filter(spec) for spec in filter_specs]
    with Progress() as progress:    # before the source opens: a daemon's save shows too
        return _copy_uris(src, dst, filters, dict(options, progress=progress), out, started)


def _copy_uris(src, dst, filters, options, out, started):
    # both URIs are checked before either side is opened (a sink creates its output)
    source_uri, sink_uri = checked(parse_uri(src), "input"), checked(parse_uri(dst), "output")
    sink = open_sink(sink_uri, options)
    layer_cache = open_cache(options.get("layer_cache")) if CopyCache.supports(sink) else None
    try:
        with open_source(source_uri, options) as source:
            return copy(source, sink, filters, parallel=options.get("parallel", 4),
                        verify=options.get("verify", True) or options.get("verify_full",
                                                                          False),
                        verify_full=options.get("verify_full", False), out=out,
                        layer_cache=layer_cache, started=started,
                        progress=options["progress"], referrers=options.get("referrers"))
    finally:
        if layer_cache is not None:
            layer_cache.close()
