"""The layer pipeline: one pass over each layer, in bounded memory.

    read -> decompress -> filter stages (native tar rewrite) -> sha256 (diff_id)
         -> [compress -> sha256 (digest)] -> sink

Every stage consumes and yields ~1 MiB chunks; the codecs, hashlib and the native
rewriter release the GIL, so layers processed by different threads use every core.
"""
import hashlib

from . import compression
from ._native import rewrite
from ._native._common import TarError
from .errors import InputError, IntegrityError, LayerError
from .model import DOCKER_LAYER_TAR
from .transports.base import LayerResult


def _opened(ref, task):
    """ref's blob, its reads counted by the progress task when there is one."""
    fileobj = ref.open()
    return fileobj, (task.counted(fileobj) if task is not None else fileobj)


def run_layer(ref, filters, writer, compress="none", level=None, media_type=DOCKER_LAYER_TAR,
              task=None):
    """Stream one layer through the filters into writer; return its LayerResult.

    With compress = gzip/zstd the writer receives the compressed blob; the result then
    carries both the diff_id (uncompressed) and the blob digest (compressed).

    When no filter changes content, the result must hash to the diff_id the config
    declares (a corrupt or mislabelled source layer is an error, not a silent copy).
    """
    stages = [f.stage(ref) for f in filters]
    rewrites = any(f.changes_content for f in filters)
    if not stages:
        stages = [rewrite.TarRewriter(rewrite=False)]   # validate the tar structure
        passthrough = [True]
    else:
        passthrough = [not f.changes_content for f in filters]
    digest = hashlib.sha256()
    blob = hashlib.sha256() if compress != "none" else None
    codec = compression.compressor(compress, level) if blob is not None else None
    size = blob_size = 0

    def store(data):
        nonlocal blob_size
        if data:
            blob.update(data)
            writer.write(data)
            blob_size += len(data)

    def emit(data):
        nonlocal size
        if data:
            digest.update(data)
            size += len(data)
            if codec is None:
                writer.write(data)
            else:
                store(codec.compress(data))

    def through(data, first):
        for stage, passes in zip(stages[first:], passthrough[first:]):
            if not data:
                return data
            out = stage.feed(data)
            if not passes:
                data = out
        return data

    unknown = "none" if any(f.reads_any_blob for f in filters) else "error"
    try:
        raw, fileobj = _opened(ref, task)
        with raw:
            kind = ref.compression or compression.from_media_type(ref.media_type)
            for chunk in compression.iter_uncompressed(fileobj, kind, unknown=unknown):
                emit(through(chunk, 0))
        for i, stage in enumerate(stages):
            tail = stage.close()
            if tail and not passthrough[i]:
                emit(through(tail, i + 1))
        if codec is not None:
            store(codec.flush())
    except (TarError, InputError) as exc:
        raise LayerError("layer %d (%s): %s" % (ref.index, ref.name, exc), ref.index,
                         str(exc)) from None
    diff_id = "sha256:" + digest.hexdigest()
    counts = [s for s in stages if hasattr(s, "dropped")]
    if codec is None:
        blob_digest, blob_size = diff_id, size
    else:
        blob_digest = "sha256:" + blob.hexdigest()
    result = LayerResult(index=ref.index, diff_id=diff_id, size=size, digest=blob_digest,
                         blob_size=blob_size, media_type=media_type, source=ref,
                         members=counts[-1].count if counts else 0,
                         dropped=sum(s.dropped for s in counts))
    if not rewrites:
        _check_diff_id(ref, diff_id, result)
    return result


def _check_diff_id(ref, diff_id, result):
    if ref.diff_id and diff_id != ref.diff_id:
        raise IntegrityError("layer %d (%s): content hashes to %s but the config says %s"
                             % (ref.index, ref.name, diff_id, ref.diff_id), result)


def copy_blob(ref, writer, media_type, task=None):
    """Pass a stored blob through unchanged (same compression on both sides, no filters).

    It is decompressed on the way only to count: the Summary's SIZE is the uncompressed
    size on every path, and the blob's diff_id is checked like any other layer's."""
    digest = hashlib.sha256()
    content = hashlib.sha256()
    size = blob_size = 0
    dec = compression.decompressor(ref.compression or compression.from_media_type(ref.media_type))
    try:
        raw, fileobj = _opened(ref, task)
        with raw:
            for chunk in iter(lambda: fileobj.read(compression.CHUNK), b""):
                digest.update(chunk)
                writer.write(chunk)
                blob_size += len(chunk)
                for piece in dec.pieces(chunk):
                    content.update(piece)
                    size += len(piece)
        dec.flush()
    except InputError as exc:
        raise LayerError("layer %d (%s): %s" % (ref.index, ref.name, exc), ref.index,
                         str(exc)) from None
    result = LayerResult(index=ref.index, diff_id=ref.diff_id, size=size,
                         digest="sha256:" + digest.hexdigest(), blob_size=blob_size,
                         media_type=media_type, source=ref)
    _check_diff_id(ref, "sha256:" + content.hexdigest(), result)
    return result
