"""dir:// source: read back the layout our dir:// sink writes (0.4.17 B.6).

0.4.17 had no dir:// input although its docs promised `process dir://... tar://...`
(spec A.3); only `recreate-image` read such a directory, and it wrote
`<id>/layer.tar/layer.tar` paths (E.2 #15).  Here the directory is an ordinary source:
the image is chosen through catalog.json (`?image=NAME&tag=TAG`, needed only when the
directory holds several images), the config is read as stored, and each layer streams
from its `<name>/layer.tar` file (sinks name layers by diff_id, so no path doubles).

An expanded root filesystem (`expand=true`, oci://) cannot be turned back into layers;
the layer files next to it are what is read, and when they are gone the error says so.
"""
import os
import posixpath

from ...errors import InputError
from ...jsonparse import parse_json
from ...model import DOCKER_LAYER_TAR, config_diff_ids, save_manifest_entries, split_repotag
from ...uri import text
from ..base import ImageSource, LayerRef


class DirectorySource(ImageSource):
    OPTIONS = {"image": text, "tag": text}

    def __init__(self, path, image=None, tag=None):
        self.path = os.path.abspath(path)
        if not os.path.isdir(self.path):
            what = "No such directory" if not os.path.exists(self.path) else "Not a directory"
            raise InputError("%s: %s" % (what, self.path))
        self._root = os.path.realpath(self.path)
        self.manifest_name = self._select(image or None, tag or None)
        self._entry = self._load_entry(self.manifest_name, image, tag)
        self._config = self._read_config(self._entry["Config"])
        self._layer_paths = [self._member(name, "layer") for name in self._entry["Layers"]]
        self._check_layers()

    @classmethod
    def from_uri(cls, uri, options):
        return cls(uri.path, image=uri.options.get("image"), tag=uri.options.get("tag"))

    # -- choosing the image ----------------------------------------------------------
    def _json(self, name):
        path = self._inside(os.path.join(self.path, name), name)
        try:
            with open(path, "rb") as fileobj:
                return parse_json(fileobj.read())
        except FileNotFoundError:
            raise InputError("dir://%s: %s is missing" % (self.path, name)) from None
        except ValueError as exc:
            raise InputError("dir://%s: %s is not valid JSON: %s"
                             % (self.path, name, exc)) from None
        except OSError as exc:
            raise InputError("cannot read %s: %s" % (path, exc.strerror)) from None

    def _catalog(self):
        """[(image, tag, manifest file)] from catalog.json, or None without one."""
        if not os.path.exists(os.path.join(self.path, "catalog.json")):
            return None
        catalog = self._json("catalog.json")
        if not isinstance(catalog, dict):
            raise InputError("dir://%s: catalog.json is not an object" % self.path)
        return [(image, tag, name) for image, tags in sorted(catalog.items())
                if isinstance(tags, dict) for tag, name in sorted(tags.items())]

    def _manifest_files(self):
        return sorted(name for name in os.listdir(self.path)
                      if name == "manifest.json"
                      or (name.startswith("manifest-") and name.endswith(".json")))

    def _select(self, image, tag):
        """The manifest file of the wanted image; the catalog decides when there is one."""
        entries = self._catalog()
        if entries is None:
            names = self._manifest_files()
            if not names:
                raise InputError(
                    "dir://%s is not an occystrap directory image (no catalog.json or "
                    "manifest.json); expanded root filesystems and OCI bundles cannot "
                    "be read back" % self.path)
            if len(names) > 1:
                raise InputError("dir://%s: no catalog.json and several manifests (%s)"
                                 % (self.path, ", ".join(names)))
            return names[0]
        chosen = [e for e in entries if (image is None or e[0] == image)
                  and (tag is None or e[1] == tag)]
        if not chosen and image is not None:
            # 0.4.17's legacy commands named images without their registry host.
            chosen = [e for e in entries if e[0].endswith("/" + image)
                      and (tag is None or e[1] == tag)]
        listing = ", ".join("%s:%s" % e[:2] for e in entries) or "none"
        if not chosen:
            raise InputError("dir://%s holds no image %s:%s (catalog.json lists: %s)"
                             % (self.path, image or "*", tag or "*", listing))
        if len(chosen) > 1:
            raise InputError("dir://%s holds several images; choose one with "
                             "?image=NAME&tag=TAG (catalog.json lists: %s)"
                             % (self.path, listing))
        self.image, self.tag, name = chosen[0]
        if not isinstance(name, str) or "/" in name or not name.endswith(".json"):
            raise InputError("dir://%s: catalog.json names a bad manifest file: %r"
                             % (self.path, name))
        return name

    def _names(self, repotag):
        """Whether repotag names the catalog's image: the same, its last component (0.4.17's
        RepoTags), or with a registry host in front (the catalog keeps 0.4.17's names)."""
        wanted = "%s:%s" % (self.image, self.tag)
        return repotag in (wanted, "%s:%s" % (self.image.rsplit("/", 1)[-1], self.tag)) \
            or repotag.endswith("/" + wanted)

    def _load_entry(self, name, image, tag):
        try:
            manifest = save_manifest_entries(self._json(name))
        except ValueError as exc:
            raise InputError("dir://%s: %s %s" % (self.path, name, exc)) from None
        entry = manifest[0]
        if self.image != "unknown":
            matching = [e for e in manifest
                        if any(self._names(tag) for tag in e.get("RepoTags") or [])]
            if matching:
                entry = matching[0]
            elif entry.get("RepoTags"):
                raise InputError(
                    "dir://%s: %s now holds %s, not %s:%s (an image written later without "
                    "unique_names replaced it)" % (self.path, name,
                                                   entry["RepoTags"][0], self.image, self.tag))
        elif entry.get("RepoTags"):
            self.image, self.tag = split_repotag(entry["RepoTags"][0])
        return entry

    # -- files -----------------------------------------------------------------------
    def _inside(self, path, what):
        """path, once it is known to resolve inside the directory: a symlink there
        pointing elsewhere (say layer.tar -> /etc/shadow) would otherwise be read into
        the image.  Symlinks within the directory are followed."""
        real = os.path.realpath(path)
        if os.path.commonpath([self._root, real]) != self._root:
            raise InputError("dir://%s: %s is a symlink out of the directory (to %s)"
                             % (self.path, what, real))
        return path

    def _member(self, name, what):
        """Absolute path of a file the manifest names; never outside the directory."""
        if not isinstance(name, str) or not name:
            raise InputError("dir://%s: bad %s path %r" % (self.path, what, name))
        normal = posixpath.normpath(name)
        if normal.startswith("/") or normal == ".." or normal.startswith("../"):
            raise InputError("dir://%s: %s path leaves the directory: %s"
                             % (self.path, what, name))
        return self._inside(os.path.join(self.path, normal), "%s %s" % (what, name))

    def _read_config(self, name):
        path = self._member(name, "config")
        try:
            with open(path, "rb") as fileobj:
                data = fileobj.read()
        except FileNotFoundError:
            raise InputError("dir://%s: config %s is missing" % (self.path, name)) from None
        except OSError as exc:
            raise InputError("cannot read %s: %s" % (path, exc.strerror)) from None
        try:
            self._diff_ids = config_diff_ids(parse_json(data))
        except ValueError as exc:
            raise InputError("dir://%s: config %s is not an image config: %s"
                             % (self.path, name, exc)) from None
        return data

    def _check_layers(self):
        if len(self._diff_ids) != len(self._layer_paths):
            raise InputError("dir://%s: config lists %d diff_ids but %s %d layers"
                             % (self.path, len(self._diff_ids), self.manifest_name,
                                len(self._layer_paths)))
        expanded = os.path.join(self.path, self.manifest_name[:-len(".json")])
        for path in self._layer_paths:
            if os.path.isfile(path):
                continue
            hint = ""
            if os.path.isdir(expanded):
                hint = " (the expanded tree %s cannot be turned back into layers)" % expanded
            raise InputError("dir://%s: layer file %s is missing%s"
                             % (self.path, os.path.relpath(path, self.path), hint))

    # -- ImageSource -----------------------------------------------------------------
    def config_bytes(self):
        return self._config

    def layers(self):
        refs = []
        for index, path in enumerate(self._layer_paths):
            relative = os.path.relpath(path, self.path)
            name = os.path.dirname(relative) if os.path.basename(relative) == "layer.tar" \
                else relative
            refs.append(LayerRef(
                index=index, name=name, open=lambda path=path: open(path, "rb"),
                diff_id=self._diff_ids[index], size=os.path.getsize(path),
                media_type=DOCKER_LAYER_TAR, compression=None))
        return refs
