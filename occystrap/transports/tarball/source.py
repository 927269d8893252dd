"""tar:// source: a docker-save tarball (legacy, Docker 25+ OCI layout, podman/skopeo).

The outer tarball is indexed by seeking over headers; each layer is then a bounded
slice of the file, read by its own handle (no whole layer in RAM, upstream B.14).
Handles symlinked layers (`<id>/layer.tar -> ../<diffid>.tar`, podman and skopeo) and
names each layer by its blob, never the empty string (upstream E.2 #10/#11).
"""
import os
import posixpath

from ... import tarindex
from ...errors import InputError
from ...jsonparse import parse_json
from ...fileslice import FileSlice
from ...model import check_descriptor, config_diff_ids, save_manifest_entries, split_repotag
from ..._native._common import LNKTYPE, SYMTYPE, TarError
from ..base import ImageSource, LayerRef


class TarballSource(ImageSource):

    def __init__(self, path):
        self.path = self.local_path = path
        if not os.path.exists(path):
            raise InputError("No such file: %s" % path)
        if os.path.isdir(path):
            raise InputError("Not a tarball (is a directory): %s" % path)
        try:
            with open(path, "rb") as fileobj:
                self._members = {}
                for member in tarindex.iter_members(fileobj):
                    name = member.name.decode("utf-8", "surrogateescape")
                    self._members[posixpath.normpath(name)] = member
        except TarError as exc:
            raise InputError("%s is not a valid tarball: %s" % (path, exc)) from None
        except OSError as exc:
            raise InputError("cannot read %s: %s" % (path, exc.strerror)) from None
        self._load_manifest()

    @classmethod
    def from_uri(cls, uri, options):
        return cls(uri.path)

    # -- reading members -------------------------------------------------------------
    def _resolve(self, name, depth=0):
        name = posixpath.normpath(name)
        member = self._members.get(name)
        if member is None:
            raise InputError("%s: missing member %s" % (self.path, name))
        if member.type in (SYMTYPE, LNKTYPE) and depth < 16:
            target = member.linkname.decode("utf-8", "surrogateescape")
            if member.type == SYMTYPE and not target.startswith("/"):
                target = posixpath.join(posixpath.dirname(name), target)
            return self._resolve(target.lstrip("/"), depth + 1)
        return member

    def _slice(self, name):
        member = self._resolve(name)
        return FileSlice(self.path, member.offset, member.size)

    def _read(self, name):
        with self._slice(name) as fileobj:
            return fileobj.read()

    def _json(self, name):
        try:
            return parse_json(self._read(name))
        except ValueError as exc:
            raise InputError("%s: %s is not valid JSON: %s" % (self.path, name, exc)) from None

    # -- manifest --------------------------------------------------------------------
    def _load_manifest(self):
        if "manifest.json" not in self._members:
            if "repositories" in self._members:
                raise InputError("%s: legacy Docker format (pre-1.10, no manifest.json) "
                                 "is not supported" % self.path)
            raise InputError("%s is not a docker-save tarball (no manifest.json)" % self.path)
        try:
            entry = save_manifest_entries(self._json("manifest.json"))[0]
        except ValueError as exc:
            raise InputError("%s: manifest.json %s" % (self.path, exc)) from None
        self._entry = entry
        if entry.get("RepoTags"):
            self.image, self.tag = split_repotag(entry["RepoTags"][0])
        self._config = self._read(entry["Config"])
        try:
            self._diff_ids = config_diff_ids(parse_json(self._config))
        except ValueError as exc:
            raise InputError("%s: image config is not valid: %s" % (self.path, exc)) from None
        if len(self._diff_ids) != len(entry["Layers"]):
            raise InputError("%s: config lists %d diff_ids but manifest.json %d layers"
                             % (self.path, len(self._diff_ids), len(entry["Layers"])))
        self._media_types = self._oci_media_types()

    def _oci_media_types(self):
        """Layer media types from the OCI manifest of a Docker 25+ save, when present."""
        config_path = self._entry["Config"]
        if not config_path.startswith("blobs/") or "index.json" not in self._members:
            return {}
        types = {}
        try:
            index = self._json("index.json")
            for desc in index.get("manifests", []):
                manifest = self._json("blobs/" + check_descriptor(desc)["digest"].replace(":", "/"))
                for layer in manifest.get("layers", []):
                    check_descriptor(layer)
                    types["blobs/" + layer["digest"].replace(":", "/")] = layer.get("mediaType")
        except (InputError, ValueError, KeyError, TypeError, AttributeError):
            return {}           # the layers' magic bytes still tell their compression
        return types

    # -- ImageSource -----------------------------------------------------------------
    def config_bytes(self):
        return self._config

    def layers(self):
        refs = []
        for index, path in enumerate(self._entry["Layers"]):
            member = self._resolve(path)
            refs.append(LayerRef(
                index=index, name=self._layer_name(path),
                open=lambda path=path: self._slice(path),
                diff_id=self._diff_ids[index], size=member.size,
                media_type=self._media_types.get(posixpath.normpath(path)),
                digest=self._blob_digest(path)))
        return refs

    @staticmethod
    def _layer_name(path):
        path = posixpath.normpath(path)
        if path.startswith("blobs/"):
            return posixpath.basename(path)
        if posixpath.basename(path) == "layer.tar":
            return posixpath.dirname(path)
        base = posixpath.basename(path)
        return base[:-4] if base.endswith(".tar") else base

    @staticmethod
    def _blob_digest(path):
        path = posixpath.normpath(path)
        if path.startswith("blobs/sha256/"):
            return "sha256:" + posixpath.basename(path)
        return None
