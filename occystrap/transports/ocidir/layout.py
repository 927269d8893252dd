"""What the ocidir:// and oci-archive:// sides share: the OCI image layout's names
(image-spec "image-layout": `oci-layout`, `index.json`, `blobs/<alg>/<hex>`), the
`PATH[:TAG]` grammar, the tag lookup in index.json and a reader that checks a blob's
size and digest as it streams.
"""
import io
import posixpath

from ... import model
from ...errors import InputError, URIParseError
from ...jsonparse import parse_json
from ..blobcheck import BlobCheck

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_VERSION = "1.0.0"
REF_NAME = "org.opencontainers.image.ref.name"
CHUNK = 1 << 20


def split_path(path, default=None):
    """(path, tag) of `PATH[:TAG]`: the tag is after the last ':' of the last path
    component (a ':' in a directory name above it stays part of the path)."""
    head, slash, last = path.rpartition("/")
    if ":" in last:
        last, _, tag = last.rpartition(":")
        if not tag:
            raise URIParseError("empty tag in %s" % path)
        if not last:
            raise URIParseError("no path before the tag in %s" % path)
        return head + slash + last, tag
    return path, default


def blob_name(digest):
    """`blobs/<alg>/<hex>` of digest: only a well-formed digest names a file, so no
    descriptor can point outside blobs/ (`sha256:../../x` is refused)."""
    if not model.is_digest(digest):
        raise InputError("bad digest %r" % (digest,))
    algorithm, _, encoded = digest.partition(":")
    return posixpath.join("blobs", algorithm, encoded)


def layout_index(raw, where):
    """The descriptors of an index.json's bytes, shape-checked.

    :raises InputError: naming where, when it is not an index.
    """
    try:
        document = parse_json(raw)
    except ValueError as exc:
        raise InputError("%s: index.json is not valid JSON: %s" % (where, exc)) from None
    if not isinstance(document, dict) or not isinstance(document.get("manifests"), list):
        raise InputError("%s: index.json is not an image index" % where)
    try:
        for entry in document["manifests"]:
            model.check_descriptor(entry)
    except ValueError as exc:
        raise InputError("%s: index.json: %s" % (where, exc)) from None
    return document


def ref_name(entry):
    annotations = entry.get("annotations")
    if isinstance(annotations, dict) and isinstance(annotations.get(REF_NAME), str):
        return annotations[REF_NAME]
    return None


def find_entry(document, tag, where):
    """The index.json entry for tag; tag None picks the only entry there is.

    :raises InputError: naming the tags present when there is no such entry.
    """
    entries = document["manifests"]
    if tag is None and len(entries) == 1:
        return entries[0]
    for entry in entries:
        if ref_name(entry) == tag:
            return entry
    names = [ref_name(e) for e in entries if ref_name(e) is not None]
    if tag is None:
        raise InputError("%s holds %d images: name a tag (tags: %s)"
                         % (where, len(entries), ", ".join(names) or "none"))
    raise InputError("tag %s not found in %s (tags: %s)"
                     % (tag, where, ", ".join(names) or "none"))


class VerifiedReader(io.RawIOBase):
    """A blob's file object that fails at EOF unless the bytes hash to the digest and
    count to the size: a layout on disk is input like any other."""

    def __init__(self, fileobj, digest, size, where):
        super().__init__()
        self._file = fileobj
        self._check = BlobCheck(digest, size, where)
        self._checked = False

    def readable(self):
        return True

    def readinto(self, buffer):
        count = self._file.readinto(buffer)
        if count:
            self._check.update(memoryview(buffer)[:count])
        elif not self._checked:
            self._checked = True
            self._check.finish()
        return count

    def close(self):
        if not self.closed:
            self._file.close()
        super().close()
