"""Copying a descriptor tree: an index and its children, or one image, byte for byte
where nothing changes.

A source with stored manifests (registry://, ocidir://) hands over its tree: an
ImageIndex or an ImageManifest, with the bytes it read.  With no content filter and no
change of compression, every blob and manifest goes to a sink that stores manifests as
it is (put_blob, put_manifest, put_index), so all digests stay the same and no layer is
decompressed.  Otherwise each selected image goes through api.copy_image (the layer
pipeline), the children first and a new index, pruned to the selected platforms, last.
"""
import logging

from . import compression, storedsize
# api imports this module only when it copies, so importing api here is no cycle
from .api import StoppableReader, copy_image, copy_images, in_pool, provenance
from .errors import InputError, OutputError
from .model import platforms, sha256_digest
from .model.tree import ImageIndex, rebuilt_index
from .transports.base import LayerResult, layer_threads

LOG = logging.getLogger(__name__)


def uses_tree(source, sink):
    """Whether the copy walks source's tree: it has one, and the sink stores manifests
    or the user asked for several platforms (which the sink must then refuse)."""
    if source.root() is None:
        return False
    return sink.stores_manifests or (
        platforms.keeps_index(source.platforms) and isinstance(source.root(), ImageIndex))


def copy_tree(source, sink, run):
    """Copy source's tree into sink; return the LayerResults of every image written."""
    root = source.root()
    multi = platforms.keeps_index(source.platforms) and isinstance(root, ImageIndex)
    if multi and not sink.holds_index:
        raise OutputError("%s:// holds one image; --platform %s needs an output that "
                          "holds an index (registry://, ocidir://)"
                          % (sink.scheme, _shown(source.platforms)))
    if not multi:
        node = source.selected
        results, (digest, _size, _type) = _copy_image(source, sink, run, node, False)
        _referrers(source, sink, run, [node.digest], digest == node.digest)
        return results
    positions = platforms.select_many(root.json, source.platforms)
    if not positions:
        raise InputError("the index lists no images")
    nodes = [source.child(root.manifests[position]) for position in positions]
    results, children = [], {}
    if _together(nodes, sink, run):
        saved, sink.reference = sink.reference, None        # children go by digest
        try:
            images = copy_images([source.image_of(node) for node in nodes], sink, run)
        finally:
            sink.reference = saved
        for position, image in zip(positions, images):
            results.extend(image.results)
            children[position] = image.manifest
    else:
        for position, node in zip(positions, nodes):
            written, children[position] = _copy_image(source, sink, run, node, True)
            results.extend(written)
    raw = rebuilt_index(root, positions, children,
                        provenance(root.digest, run.filters, sink, _shown(source.platforms)))
    sink.put_index(raw, root.media_type, sink.reference)
    digests = [root.digest] + [root.manifests[p].digest for p in positions]
    _referrers(source, sink, run, digests, raw == root.raw)
    return results


def _referrers(source, sink, run, digests, unchanged):
    """With --referrers, copy what refers to the images written (signatures, SBOMs,
    attestations), byte for byte; a rewritten image drops them, since a signature of
    the source no longer matches it, and says so."""
    if not run.referrers:
        return
    found = [(digest, tag, node) for digest in digests
             for tag, node in source.referrers(digest)]
    if not unchanged:
        if found:
            LOG.warning("%d referrer(s) of the source not copied: the image was rewritten, "
                        "so its signatures and attestations no longer match it", len(found))
        return
    for digest, tag, node in found:
        copy_as_stored(source, sink, run, node, tag)
        LOG.info("Copied referrer %s of %s%s", node.digest, digest,
                 " (tag %s)" % tag if tag else "")


def copy_as_stored(source, sink, run, node, reference):
    """node (an index and its children, or a manifest) with its blobs, as stored."""
    if isinstance(node, ImageIndex):
        for desc in node.manifests:
            copy_as_stored(source, sink, run, source.child(desc), None)
        sink.put_index(node.raw, node.media_type, reference or node.digest)
        return
    _copy_blobs(source, sink, run, node)
    sink.put_manifest(node.raw, node.media_type, reference or node.digest)


def _shown(wanted):
    return wanted if wanted == "all" else ",".join("/".join(p for p in w if p)
                                                   for w in wanted)


def exact(node, sink, filters):
    """Whether node can be copied as stored: no filter (no content filter changes it,
    no observer needs to read its layers), a sink that stores manifests, and every
    layer compressed as the sink was asked."""
    if filters or not sink.stores_manifests:
        return False
    wanted = sink.requested_compression
    return wanted is None or all(compression.from_media_type(d.media_type) == wanted
                                 for d in node.layers)


def planned_digest(source, sink, filters):
    """The digest a copy of source into sink will put under the sink's reference when
    it is byte-exact, known before any blob moves (sync's unchanged test); None when
    the copy rewrites something.  Reads manifests only."""
    root = source.root()
    if root is None or filters or not sink.stores_manifests:
        return None
    if not (platforms.keeps_index(source.platforms) and isinstance(root, ImageIndex)):
        node = source.selected
        return node.digest if exact(node, sink, filters) else None
    positions = platforms.select_many(root.json, source.platforms)
    if sink.requested_compression is not None and not all(
            exact(source.child(root.manifests[p]), sink, filters) for p in positions):
        return None
    children = {p: (root.manifests[p].digest, root.manifests[p].size,
                    root.manifests[p].media_type) for p in positions}
    return sha256_digest(rebuilt_index(root, positions, children))


def planned_provenance(source, sink, filters):
    """The provenance annotations (api.provenance) a rewriting copy of source into
    sink will give what it puts under the sink's reference; None for a byte-exact
    copy or a source without stored manifests."""
    root = source.root()
    if root is None or not sink.stores_manifests:
        return None
    if platforms.keeps_index(source.platforms) and isinstance(root, ImageIndex):
        return provenance(root.digest, filters, sink, _shown(source.platforms))
    return provenance(source.selected.digest, filters, sink)


def _together(nodes, sink, run):
    """Whether an index's children are rewritten in one pool (api.copy_images): each
    is rewritten (not copied as stored), they share one manifest format, and every
    filter changes content (an observer's per-layer state is per image)."""
    return (len(nodes) > 1 and not any(exact(node, sink, run.filters) for node in nodes)
            and len({node.media_type for node in nodes}) == 1
            and all(f.changes_content for f in run.filters))


def _copy_image(source, sink, run, node, child):
    """Write one image, under the sink's reference or (child: an index's entry) its
    digest; return (LayerResults, (digest, size, media type) of its manifest)."""
    reference = None if child else sink.reference
    if exact(node, sink, run.filters):
        results = _copy_blobs(source, sink, run, node)
        sink.put_manifest(node.raw, node.media_type, reference or node.digest)
        return results, (node.digest, len(node.raw), node.media_type)
    saved, sink.reference = sink.reference, reference   # None: the sink puts it by digest
    try:
        written = copy_image(source.image_of(node), sink, run)
    finally:
        sink.reference = saved
    return written.results, sink.last_manifest


def _copy_blobs(source, sink, run, node):
    """Every blob of node, as stored, in run's threads; the config first."""
    blobs = list(enumerate([node.config] + list(node.layers)))
    run.progress.layers += len(node.layers)

    def one(item, stop):
        position, desc = item

        def put():
            """(reused, uncompressed size or None): the size is read from the blob's
            framing as it passes, or from its tail when the destination has it."""
            if sink.try_reuse(desc):
                return True, _reused_size(source, desc) if position and run.sizes else None
            task = run.progress.task("blob %s" % desc.digest[7:19], desc.size)
            try:
                with source.open_blob(desc) as blob:
                    watch = storedsize.SizeWatch(blob, desc.media_type, desc.size)
                    sink.put_blob(desc, StoppableReader(task.counted(watch), stop))
            finally:
                task.close()
            return False, watch.size()

        (reused, size), shared = run.once(("stored", desc.digest), put)
        result = LayerResult(index=position - 1, diff_id=None, size=size or 0,
                             digest=desc.digest, blob_size=desc.size or 0,
                             media_type=desc.media_type)
        if position:
            run.progress.layer_done(result, reused=reused or shared)
        return result

    return in_pool(layer_threads(run.parallel, source, sink), one, blobs, run.cancel)[1:]


def _reused_size(source, desc):
    """A reused layer's uncompressed size, from its last bytes at the source."""
    return storedsize.reused_size(desc.media_type, desc.size,
                                  lambda count: source.blob_tail(desc, count))
