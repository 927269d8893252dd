"""ocidir:// and oci-archive:// sinks: write an OCI image layout, or a tar of one.

Blobs and manifests go to `blobs/<alg>/<hex>` first, each through a temporary file
renamed into place once its size and digest check out; the tag's index.json entry
is written last (read, changed, written under a temp name and renamed, under the
layout's flock), so a failed copy leaves index.json as it was and several tags share
one layout and its blobs.  oci-archive builds the layout in a temporary directory next
to the output and renames the finished tar over PATH.
"""
import contextlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import threading

from ... import model, tarindex
from ...atomicfile import locked, write_atomic
from ...compression import LEVELS, check_level
from ...errors import InputError, OutputError
from ...jsonparse import parse_json
from ...model.tree import layer_media_type, rebuilt_manifest
from ...uri import choice, integer
from ..base import ImageSink
from ..blobcheck import BlobCheck
from ..filewriter import FileLayerWriter
from ..outpath import file_output
from ..treesource import setting
from .layout import (CHUNK, INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION, REF_NAME, blob_name,
                     layout_index, ref_name, split_path)

TEMP_PREFIX = ".occystrap-"
OPTIONS = {"compression": choice(*LEVELS), "compression_level": integer()}


def layout_dir(path):
    """The directory path names, once it is known to be a layout or free for one.

    :raises OutputError: a file, or a non-empty directory without oci-layout.
    """
    target = os.path.realpath(path)
    if not os.path.lexists(target):
        if not os.path.isdir(os.path.dirname(target)):
            raise OutputError("Output directory does not exist: %s" % os.path.dirname(target))
    elif not os.path.isdir(target):
        raise OutputError("Output path exists and is not an OCI layout directory: %s" % path)
    elif os.listdir(target) and not os.path.isfile(os.path.join(target, LAYOUT_FILE)):
        raise OutputError("Output path is a non-empty directory that is not an OCI "
                          "layout (no %s): %s" % (LAYOUT_FILE, path))
    return target


# Docker v2 media types and their OCI equivalents (image-spec "media-types", compatibility)
OCI_TYPES = {model.DOCKER_MANIFEST: model.OCI_MANIFEST, model.DOCKER_CONFIG: model.OCI_CONFIG,
             model.DOCKER_LAYER_GZIP: model.OCI_LAYER_GZIP,
             model.DOCKER_LAYER_TAR: model.OCI_LAYER_TAR,
             "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
                 "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"}


def as_oci(raw):
    """A Docker v2 manifest's bytes as an OCI manifest: the same config and layer
    blobs, their media types translated."""
    document = parse_json(raw)
    document["mediaType"] = model.OCI_MANIFEST
    for desc in [document.get("config")] + list(document.get("layers") or []):
        if isinstance(desc, dict) and desc.get("mediaType") in OCI_TYPES:
            desc["mediaType"] = OCI_TYPES[desc["mediaType"]]
    return json.dumps(document, separators=(",", ":")).encode()


class OcidirSink(ImageSink):
    """Blobs, manifests and indexes into one layout; the tag goes last."""
    OPTIONS = OPTIONS
    holds_index = True
    stores_manifests = True

    def __init__(self, uri, options):
        path, self.tag = split_path(uri.path, "latest")
        self.requested_compression = setting(uri, options, "compression")
        self.compression = self.requested_compression or "gzip"
        self.compression_level = setting(uri, options, "compression_level")
        check_level(self.compression, self.compression_level)
        self.path = path
        # local_path stays None: a layout may be read and written in one copy (another
        # tag of it): blobs are content-addressed and replaced by renames, and the
        # source read index.json before the tag is written.
        self.root = self._target(path)
        self.reference = self.tag
        self.layer_media_type = layer_media_type(model.OCI_MANIFEST, self.compression)
        self._lock = threading.Lock()
        self._ready = False
        self._temps = set()
        self._source_format = None
        self._tagged = None             # (digest, size, media type) once the tag is written
        if self.root and os.path.isfile(os.path.join(self.root, INDEX_FILE)):
            self._read_index()          # a broken index.json fails before any copying

    @classmethod
    def from_uri(cls, uri, options):
        return cls(uri, options)

    def _target(self, path):
        return layout_dir(path)

    @property
    def shown(self):
        return "%s://%s:%s" % (self.scheme, self.path, self.tag)

    # -- the layout ------------------------------------------------------------------------
    def _ensure(self):
        """Create the directory, oci-layout and an empty index.json when absent."""
        with self._lock:
            if self._ready:
                return
            os.makedirs(os.path.join(self.root, "blobs", "sha256"), exist_ok=True)
            if not os.path.isfile(os.path.join(self.root, LAYOUT_FILE)):
                write_atomic(os.path.join(self.root, LAYOUT_FILE),
                           json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
            with locked(self.root):
                if not os.path.isfile(os.path.join(self.root, INDEX_FILE)):
                    self._write_index({"schemaVersion": 2, "mediaType": model.OCI_INDEX,
                                       "manifests": []})
            self._ready = True

    def _blob_path(self, digest):
        try:
            return os.path.join(self.root, blob_name(digest))
        except InputError as exc:
            raise OutputError("%s: %s" % (self.shown, exc)) from None

    def _read_index(self):
        try:
            with open(os.path.join(self.root, INDEX_FILE), "rb") as fileobj:
                raw = fileobj.read()
            return layout_index(raw, self.shown)
        except InputError as exc:
            raise OutputError(str(exc)) from None
        except OSError as exc:
            raise OutputError("%s: cannot read index.json: %s" % (self.shown, exc.strerror)) \
                from None

    def _write_index(self, document):
        write_atomic(os.path.join(self.root, INDEX_FILE),
                     json.dumps(document, separators=(",", ":")).encode())

    @property
    def blob_scope(self):
        return ("layout", self.root) if self.root else None

    def current_annotations(self):
        """(digest, annotations) of what the tag names in the layout now, or None."""
        digest = self.current_digest()
        if digest is None:
            return None
        try:
            with open(self._blob_path(digest), "rb") as fileobj:
                document = parse_json(fileobj.read(4 << 20))
        except (OSError, ValueError):
            return digest, {}
        annotations = document.get("annotations") if isinstance(document, dict) else None
        return digest, annotations if isinstance(annotations, dict) else {}

    def current_digest(self):
        """What the tag names in the layout's index.json now, or None."""
        if not self.root or not os.path.isfile(os.path.join(self.root, INDEX_FILE)):
            return None
        for entry in self._read_index()["manifests"]:
            if ref_name(entry) == self.tag:
                return entry["digest"]
        return None

    def _tag(self, digest, size, media_type):
        """Point the tag at digest in index.json, keeping every other tag's entry."""
        self._ensure()
        entry = {"mediaType": media_type, "digest": digest, "size": size,
                 "annotations": {REF_NAME: self.tag}}
        with locked(self.root):
            document = self._read_index()
            entries, placed = [], False
            for old in document["manifests"]:
                if ref_name(old) != self.tag:
                    entries.append(old)
                elif not placed:            # the tag keeps its place in the list
                    entries.append(entry)
                    placed = True
            if not placed:
                entries.append(entry)
            document["manifests"] = entries
            document.setdefault("schemaVersion", 2)
            self._write_index(document)
        self._tagged = (digest, size, media_type)
        self.tagged_digest = digest

    # -- blobs -----------------------------------------------------------------------------
    def _has(self, digest, size):
        try:
            st = os.stat(self._blob_path(digest))
        except FileNotFoundError:
            return False
        return stat.S_ISREG(st.st_mode) and (size is None or st.st_size == size)

    def try_reuse(self, desc):
        """The layout already has the blob (the same digest, the same size)."""
        return self._has(desc.digest, desc.size)

    def _temp(self):
        self._ensure()
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".partial",
                                    dir=os.path.join(self.root, "blobs", "sha256"))
        with self._lock:
            self._temps.add(temp)
        return fd, temp

    def _place(self, temp, digest):
        target = self._blob_path(digest)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
        with self._lock:
            self._temps.discard(temp)

    def put_blob(self, desc, stream):
        """Store the blob from stream once it hashes to desc's digest and size."""
        fd, temp = self._temp()
        check = BlobCheck(desc.digest, desc.size)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in iter(lambda: stream.read(CHUNK), b""):
                    check.update(chunk)
                    out.write(chunk)
            check.finish()
            self._place(temp, desc.digest)
        except BaseException:
            self._drop(temp)
            raise

    def _put_bytes(self, data):
        digest = model.sha256_digest(data)
        if not self._has(digest, len(data)):
            fd, temp = self._temp()
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                self._place(temp, digest)
            except BaseException:
                self._drop(temp)
                raise
        return digest

    def _drop(self, temp):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        with self._lock:
            self._temps.discard(temp)

    def put_manifest(self, raw, media_type, reference):
        """Store the manifest (or index) as a blob; a tag reference (not a digest)
        then points index.json at it: the step that makes the copy visible."""
        digest = self._put_bytes(raw)
        self.last_manifest = (digest, len(raw), media_type)
        if reference is not None and not model.is_digest(reference):
            self._tag(digest, len(raw), media_type)

    def put_index(self, raw, media_type, reference):
        """As put_manifest; a Docker list whose children were all rewritten as OCI
        manifests becomes an OCI index (a Docker list of OCI manifests is neither)."""
        if media_type == model.DOCKER_LIST:
            document = parse_json(raw)
            if all(isinstance(e, dict) and e.get("mediaType") == model.OCI_MANIFEST
                   for e in document.get("manifests") or [None]):
                document["mediaType"] = media_type = model.OCI_INDEX
                raw = json.dumps(document, separators=(",", ":")).encode()
        self.put_manifest(raw, media_type, reference)

    # -- the rewriting path ----------------------------------------------------------------
    def begin(self, source):
        """A rewritten image is always written as OCI: skopeo and containerd skip an
        index.json entry of a Docker type."""
        self._source_format = (source.manifest(), source.manifest_media_type,
                               source.manifest_raw)
        self.layer_media_type = layer_media_type(model.OCI_MANIFEST, self.compression)
        self._ensure()

    def open_layer(self, ref):
        self._ensure()
        writer = FileLayerWriter(os.path.join(self.root, "blobs", "sha256"),
                                 lambda result: self._blob_path(result.digest),
                                 self._committed)
        with self._lock:
            self._temps.add(writer.temp)
        return writer

    def _committed(self, result, path, created):
        with self._lock:
            self._temps = {t for t in self._temps if os.path.exists(t)}

    def finish(self, config_bytes, results):
        """The config, then the manifest built from the source's, under the tag (or
        by digest while an index's child is written)."""
        self._put_bytes(config_bytes)
        base, base_type, base_raw = self._source_format or (None, None, None)
        raw, media_type = rebuilt_manifest(base, base_type, base_raw, config_bytes, results,
                                           self.compression, self.provenance)
        if media_type != model.OCI_MANIFEST:
            raw, media_type = as_oci(raw), model.OCI_MANIFEST
        self.put_manifest(raw, media_type, self.reference)

    # -- the end ---------------------------------------------------------------------------
    def abort(self):
        """Remove the temp files; renamed blobs stay (they are content-addressed) and
        index.json is untouched."""
        with self._lock:
            temps, self._temps = self._temps, set()
        for temp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    def verify(self, full=False):
        """Every blob the tag reaches is there with its size (full: and its digest);
        manifests are always re-read and parsed."""
        if self._tagged is None:
            return []
        errors = []
        try:
            entries = [e for e in self._read_index()["manifests"] if ref_name(e) == self.tag]
        except OutputError as exc:
            return [str(exc)]
        if [e["digest"] for e in entries] != [self._tagged[0]]:
            return ["index.json of %s does not point tag %s at %s"
                    % (self.path, self.tag, self._tagged[0])]
        digest, size, _ = self._tagged
        self._verify_node(digest, size, full, errors, depth=0)
        return errors

    def _verify_node(self, digest, size, full, errors, depth):
        raw = self._check_blob(digest, size, True, errors)
        if raw is None:
            return
        try:
            document = parse_json(raw)
        except ValueError as exc:
            errors.append("Manifest %s is not JSON: %s" % (digest, exc))
            return
        if not isinstance(document, dict):
            errors.append("Manifest %s is not a JSON object" % digest)
            return
        if isinstance(document.get("manifests"), list) and depth == 0:
            for child in document["manifests"]:
                if isinstance(child, dict) and model.is_digest(child.get("digest")):
                    self._verify_node(child["digest"], child.get("size"), full, errors, 1)
            return
        blobs = [document.get("config")] + list(document.get("layers") or [])
        for desc in blobs:
            if isinstance(desc, dict) and model.is_digest(desc.get("digest")):
                self._check_blob(desc["digest"], desc.get("size"), full, errors)
            else:
                errors.append("Manifest %s has a bad descriptor: %r" % (digest, desc))

    def _check_blob(self, digest, size, read, errors):
        """The blob's bytes when read (None when it is wrong), after its checks."""
        path = self._blob_path(digest)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            errors.append("Blob missing from layout: %s" % digest)
            return None
        if size is not None and st.st_size != size:
            errors.append("Blob %s is %d bytes, expected %d" % (digest, st.st_size, size))
            return None
        if not read:
            return b""
        check = BlobCheck(digest)
        data = bytearray()
        with open(path, "rb") as fileobj:
            for chunk in iter(lambda: fileobj.read(CHUNK), b""):
                check.update(chunk)
                if st.st_size <= 4 << 20:
                    data += chunk
        try:
            check.finish()
        except InputError:
            errors.append("Blob %s does not match its digest" % digest)
            return None
        return bytes(data)


class ArchiveSink(OcidirSink):
    """A layout built in a temporary directory next to PATH, then tarred under a temp
    name and renamed over PATH once the tag is written: PATH holds one whole archive,
    or what it held before."""

    def _target(self, path):
        self.output = self.local_path = file_output(path)
        self._staging = None
        return None

    def _ensure(self):
        if self._staging is None:
            with self._lock:
                if self._staging is None:
                    self._staging = tempfile.mkdtemp(prefix=TEMP_PREFIX + "oci-archive-",
                                                     dir=os.path.dirname(self.output))
                    self.root = self._staging
        super()._ensure()

    def _blob_path(self, digest):
        self._ensure()
        return super()._blob_path(digest)

    def try_reuse(self, desc):
        return self._staging is not None and super().try_reuse(desc)

    def _tag(self, digest, size, media_type):
        super()._tag(digest, size, media_type)
        self._write_archive()

    def _write_archive(self):
        """The layout as a tar (oci-layout, index.json, then the blobs), renamed over
        the output; owners and times are zeroed so equal layouts give equal tars."""
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".partial",
                                    dir=os.path.dirname(self.output))
        try:
            with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w",
                                                          format=tarfile.PAX_FORMAT) as tar:
                for name in self._members():
                    info = tar.gettarinfo(os.path.join(self.root, name), arcname=name)
                    info.uid = info.gid = 0
                    info.uname = info.gname = ""
                    info.mtime = 0
                    info.mode = 0o755 if info.isdir() else 0o644
                    if info.isdir():
                        tar.addfile(info)
                    else:
                        with open(os.path.join(self.root, name), "rb") as blob:
                            tar.addfile(info, blob)
            os.chmod(temp, 0o644)
            os.replace(temp, self.output)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    def _members(self):
        names = [LAYOUT_FILE, INDEX_FILE, "blobs"]
        for algorithm in sorted(os.listdir(os.path.join(self.root, "blobs"))):
            folder = os.path.join("blobs", algorithm)
            names.append(folder)
            names += [os.path.join(folder, blob)
                      for blob in sorted(os.listdir(os.path.join(self.root, folder)))
                      if not blob.startswith(TEMP_PREFIX)]
        return names

    def verify(self, full=False):
        errors = super().verify(full)
        if self._tagged is not None:
            problem = tarindex.tar_error(self.output)
            if problem:
                errors.append("%s is not a valid tar: %s" % (self.output, problem))
        return errors

    def abort(self):
        super().abort()
        self._cleanup()

    def close(self):
        self._cleanup()

    def _cleanup(self):
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
