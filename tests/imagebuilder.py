"""Deterministic builders of container images for tests and benchmarks.

Everything here uses only the stdlib ``tarfile`` (plus isal/zstandard for
compression), so tests can create exactly the image they need instead of
depending on docker, podman or a network registry:

* ``layer(entries)`` builds one uncompressed layer tar from a compact list of
  entry tuples (files, dirs, links, whiteouts, devices, xattrs ...).
* ``compress(data, kind, multi=False)`` gzip/zstd-compresses a layer,
  optionally as several gzip members / zstd frames (eStargz and zstd:chunked
  style).
* ``build_image(path, layers, ...)`` writes a ``docker save`` style tarball in
  one of three layouts seen in the wild: ``legacy`` (docker <= 24), ``oci``
  (docker 25+) and ``podman`` (skopeo/podman docker-archive).

The same inputs always give byte-identical outputs: every timestamp is fixed
and nothing depends on the local user, clock or umask.

Entry tuples for ``layer()`` (an optional trailing dict gives attributes)::

    ("file", name, data, {attrs})      regular file
    ("dir", name, {attrs})             directory
    ("symlink", name, target, {attrs})
    ("hardlink", name, target, {attrs})
    ("whiteout", path, {attrs})        writes <dir>/.wh.<base>
    ("opaque", dirpath, {attrs})       writes <dirpath>/.wh..wh..opq
    ("fifo", name, {attrs})
    ("chardev", name, major, minor, {attrs})
    ("blockdev", name, major, minor, {attrs})

attrs: mode, mtime, uid, gid, uname, gname, xattrs ({key: str|bytes} ->
``SCHILY.xattr.<key>`` PAX records) and pax (any extra PAX records, e.g.
``{"atime": "1700000000.5"}``). ``data`` may be bytes or a ``(fileobj, size)``
pair, so large files can be streamed.
"""

import hashlib
import io
import json
import os
import posixpath
import tarfile

import zstandard
from isal import isal_zlib

# A fixed, non-zero epoch (2023-11-14T22:13:20Z) used for every timestamp.
EPOCH = 1700000000
CREATED = "2023-11-14T22:13:20Z"

DEFAULT_REPOTAG = "example.com/demo/app:1.0"

_KIND_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "whiteout": tarfile.REGTYPE,
    "opaque": tarfile.REGTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chardev": tarfile.CHRTYPE,
    "blockdev": tarfile.BLKTYPE,
}

# Number of positional arguments after (kind, name) for each kind.
_KIND_ARGS = {
    "file": 1, "dir": 0, "symlink": 1, "hardlink": 1, "whiteout": 0,
    "opaque": 0, "fifo": 0, "chardev": 2, "blockdev": 2,
}


# --------------------------------------------------------------------------
# Layers

def _split_entry(entry):
    """Return (kind, name, args, attrs) for one entry tuple."""
    kind, name = entry[0], entry[1]
    if kind not in _KIND_ARGS:
        raise ValueError("unknown entry kind %r" % (kind,))
    nargs = _KIND_ARGS[kind]
    args = list(entry[2:2 + nargs])
    rest = entry[2 + nargs:]
    attrs = dict(rest[0]) if rest else {}
    if len(args) != nargs or len(rest) > 1:
        raise ValueError("bad %s entry: %r" % (kind, entry))
    return kind, name, args, attrs


def whiteout_name(path):
    """The whiteout member name that deletes ``path`` from lower layers."""
    head, base = posixpath.split(path.rstrip("/"))
    return posixpath.join(head, ".wh." + base)


def opaque_name(dirpath):
    """The opaque-directory marker name for ``dirpath``."""
    return posixpath.join(dirpath.rstrip("/"), ".wh..wh..opq")


def _default_mode(kind):
    if kind in ("dir",):
        return 0o755
    if kind == "symlink":
        return 0o777
    return 0o644


def _xattr_value(value):
    """PAX values are str in tarfile; raw bytes survive via surrogateescape."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def make_tarinfo(entry):
    """Build a ``(TarInfo, fileobj_or_None)`` pair for one entry tuple."""
    kind, name, args, attrs = _split_entry(entry)
    if kind == "whiteout":
        name = whiteout_name(name)
    elif kind == "opaque":
        name = opaque_name(name)

    info = tarfile.TarInfo(name)
    info.type = _KIND_TYPES[kind]
    info.mode = attrs.get("mode", _default_mode(kind))
    info.mtime = attrs.get("mtime", EPOCH)
    info.uid = attrs.get("uid", 0)
    info.gid = attrs.get("gid", 0)
    info.uname = attrs.get("uname", "root")
    info.gname = attrs.get("gname", "root")

    fileobj = None
    if kind == "file":
        data = args[0]
        if isinstance(data, (bytes, bytearray)):
            info.size = len(data)
            fileobj = io.BytesIO(data)
        else:
            fileobj, info.size = data
    elif kind in ("symlink", "hardlink"):
        info.linkname = args[0]
    elif kind in ("chardev", "blockdev"):
        info.devmajor, info.devminor = args

    pax = {}
    for key, value in attrs.get("xattrs", {}).items():
        pax["SCHILY.xattr." + key] = _xattr_value(value)
    pax.update(attrs.get("pax", {}))
    info.pax_headers = pax
    return info, fileobj


def write_layer(fileobj, entries, fmt=tarfile.PAX_FORMAT):
    """Stream a layer tar built from ``entries`` into a binary file object."""
    with tarfile.open(fileobj=fileobj, mode="w", format=fmt,
                      encoding="utf-8") as tar:
        for entry in entries:
            info, data = make_tarinfo(entry)
            tar.addfile(info, data)


def layer(entries, fmt=tarfile.PAX_FORMAT):
    """Return an uncompressed layer tar (bytes) built from ``entries``.

    ``fmt`` is a tarfile format: PAX_FORMAT (default, like Docker/Go),
    GNU_FORMAT (long names as ././@LongLink records, no xattrs) or
    USTAR_FORMAT (fails on names that do not fit).
    """
    buf = io.BytesIO()
    write_layer(buf, entries, fmt)
    return buf.getvalue()


# --------------------------------------------------------------------------
# Compression

def _chunks(data, parts):
    """Split ``data`` into ``parts`` roughly equal, non-empty pieces."""
    if len(data) < parts:
        return [data]
    step = -(-len(data) // parts)
    return [data[i:i + step] for i in range(0, len(data), step)]


def _gzip(data):
    # wbits=31: gzip container. isal writes mtime 0, so output is stable.
    comp = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def _zstd(data):
    return zstandard.ZstdCompressor(level=3).compress(data)


def compress(data, kind, multi=False, parts=3):
    """Compress ``data`` with ``kind`` in ("none", "gzip", "zstd").

    With ``multi=True`` the data is split into ``parts`` pieces, each
    compressed separately and concatenated: several gzip members or several
    zstd frames, as eStargz and zstd:chunked layers are.
    """
    if kind == "none":
        return bytes(data)
    funcs = {"gzip": _gzip, "zstd": _zstd}
    if kind not in funcs:
        raise ValueError("unknown compression %r" % (kind,))
    pieces = _chunks(data, parts) if multi else [data]
    return b"".join(funcs[kind](piece) for piece in pieces)


# --------------------------------------------------------------------------
# Image configs

def default_config(diff_ids):
    """A realistic image config for layers with the given diff_ids."""
    history = []
    for i, _ in enumerate(diff_ids):
        history.append({
            "created": CREATED,
            "created_by": "/bin/sh -c #(nop) ADD file:layer%d in / " % i,
        })
    history.insert(1 if diff_ids else 0, {
        "created": CREATED,
        "created_by": '/bin/sh -c #(nop)  ENV LANG=C.UTF-8',
        "empty_layer": True,
    })
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                "/sbin:/bin",
                "LANG=C.UTF-8",
            ],
            "Entrypoint": ["/docker-entrypoint.sh"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/app",
            "Labels": {"org.opencontainers.image.title": "demo"},
            "ExposedPorts": {"8080/tcp": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": history,
    }


def merge(base, overrides):
    """Recursively merge ``overrides`` into a copy of ``base``.

    Dicts merge key by key; any other value replaces; ``None`` deletes the
    key (e.g. ``{"history": None}`` gives a config without history).
    """
    out = dict(base)
    for key, value in (overrides or {}).items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _json_bytes(obj):
    """Compact JSON, like Go's encoding/json (docker, skopeo)."""
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------
# Layer sources: bytes in memory, or a path to an uncompressed tar on disk

class _Blob:
    """Stored layer content: bytes, or a file on disk (streamed)."""

    def __init__(self, data=None, path=None):
        self.data, self.path = data, path
        self.size = len(data) if path is None else os.path.getsize(path)

    def open(self):
        if self.path is None:
            return io.BytesIO(self.data)
        return open(self.path, "rb")

    def sha256(self):
        digest = hashlib.sha256()
        with self.open() as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


def _layer_blob(source, compression):
    """Return (uncompressed _Blob, stored _Blob) for a layer source."""
    if isinstance(source, (bytes, bytearray)):
        raw = _Blob(data=bytes(source))
    else:
        raw = _Blob(path=os.fspath(source))
    if compression == "none":
        return raw, raw
    with raw.open() as f:
        return raw, _Blob(data=compress(f.read(), compression))


# --------------------------------------------------------------------------
# docker-save tarballs

def _member(name, size=0, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mtime = EPOCH
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    if kind == tarfile.SYMTYPE:
        info.mode = 0o777
    info.linkname = linkname
    return info


class _Archive:
    """Collects members of the outer image tarball, then writes them."""

    def __init__(self):
        self.members = []  # (TarInfo, opener or None)

    def dir(self, name):
        self.members.append((_member(name, kind=tarfile.DIRTYPE), None))

    def bytes(self, name, data):
        blob = _Blob(data=data)
        self.members.append((_member(name, blob.size), blob.open))

    def blob(self, name, blob):
        self.members.append((_member(name, blob.size), blob.open))

    def symlink(self, name, target):
        info = _member(name, kind=tarfile.SYMTYPE, linkname=target)
        self.members.append((info, None))

    def sort(self):
        """Order like Go's filepath.Walk over the export directory."""
        self.members.sort(key=lambda m: m[0].name.split("/"))

    def write(self, path):
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for info, opener in self.members:
                if opener is None:
                    tar.addfile(info)
                    continue
                with opener() as f:
                    tar.addfile(info, f)


def _v1_ids(diff_ids):
    """Docker-style v1 layer ids: a chain hash over the diff_ids."""
    ids, parent = [], ""
    for diff_id in diff_ids:
        parent = hashlib.sha256(
            (parent + " " + diff_id).encode()).hexdigest()
        ids.append(parent)
    return ids


def _v1_json(v1id, parent, config):
    doc = {"id": v1id}
    if parent:
        doc["parent"] = parent
    doc["created"] = CREATED
    doc["container_config"] = {"Cmd": None, "Env": None}
    doc["os"] = config.get("os", "linux")
    return _json_bytes(doc)


def _split_repotag(repotag):
    name, _, tag = repotag.rpartition(":")
    if "/" in tag or not name:
        return repotag, "latest"
    return name, tag


def _write_legacy_dirs(arc, v1ids, config, layer_name):
    """<v1id>/{VERSION,json,layer.tar} as docker <= 24 and skopeo write."""
    parent = ""
    for i, v1id in enumerate(v1ids):
        arc.dir(v1id + "/")
        arc.bytes(v1id + "/VERSION", b"1.0")
        arc.bytes(v1id + "/json", _v1_json(v1id, parent, config))
        layer_name(arc, i, v1id)
        parent = v1id


def _repositories(repotag, top_id):
    name, tag = _split_repotag(repotag)
    return _json_bytes({name: {tag: top_id}})


def _build_legacy(arc, stored, config_hex, config_bytes, config, repotag,
                  v1ids):
    def layer_name(arc, i, v1id):
        arc.blob(v1id + "/layer.tar", stored[i])

    _write_legacy_dirs(arc, v1ids, config, layer_name)
    arc.bytes(config_hex + ".json", config_bytes)
    arc.bytes("manifest.json", _json_bytes([{
        "Config": config_hex + ".json",
        "RepoTags": [repotag],
        "Layers": [v + "/layer.tar" for v in v1ids],
    }]))
    arc.bytes("repositories", _repositories(repotag, v1ids[-1]))
    arc.sort()


def _build_podman(arc, stored, diff_hexes, config_hex, config_bytes, config,
                  repotag, v1ids):
    for blob, diff_hex in zip(stored, diff_hexes):
        arc.blob(diff_hex + ".tar", blob)
    arc.bytes(config_hex + ".json", config_bytes)

    def layer_name(arc, i, v1id):
        arc.symlink(v1id + "/layer.tar", "../%s.tar" % diff_hexes[i])

    _write_legacy_dirs(arc, v1ids, config, layer_name)
    arc.bytes("manifest.json", _json_bytes([{
        "Config": config_hex + ".json",
        "RepoTags": [repotag],
        "Layers": [h + ".tar" for h in diff_hexes],
    }]))
    arc.bytes("repositories", _repositories(repotag, v1ids[-1]))


_OCI_LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def _build_oci(arc, stored, layer_hexes, config_hex, config_bytes, repotag,
               compression):
    manifest = _json_bytes({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + config_hex,
            "size": len(config_bytes),
        },
        "layers": [{
            "mediaType": _OCI_LAYER_TYPES[compression],
            "digest": "sha256:" + h,
            "size": blob.size,
        } for h, blob in zip(layer_hexes, stored)],
    })
    manifest_hex = hashlib.sha256(manifest).hexdigest()
    name, tag = _split_repotag(repotag)

    arc.dir("blobs/")
    arc.dir("blobs/sha256/")
    for h, blob in zip(layer_hexes, stored):
        arc.blob("blobs/sha256/" + h, blob)
    arc.bytes("blobs/sha256/" + config_hex, config_bytes)
    arc.bytes("blobs/sha256/" + manifest_hex, manifest)
    arc.bytes("index.json", _json_bytes({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + manifest_hex,
            "size": len(manifest),
            "annotations": {
                "io.containerd.image.name": repotag,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    }))
    arc.bytes("manifest.json", _json_bytes([{
        "Config": "blobs/sha256/" + config_hex,
        "RepoTags": [repotag],
        "Layers": ["blobs/sha256/" + h for h in layer_hexes],
    }]))
    arc.bytes("oci-layout", _json_bytes({"imageLayoutVersion": "1.0.0"}))
    arc.bytes("repositories", _json_bytes({name: {tag: layer_hexes[-1]}}))


def build_image(path, layers, *, repotag=DEFAULT_REPOTAG, layout="legacy",
                compression="none", config=None):
    """Write a docker-save style image tarball to ``path``.

    ``layers``: uncompressed layer tars, each bytes (e.g. from ``layer()``)
    or a path to a tar file on disk (streamed, never fully read into memory
    when ``compression`` is "none").
    ``layout``: "legacy", "oci" or "podman" (see the module docstring).
    ``compression``: how stored layers are compressed ("none", "gzip",
    "zstd"); docker save itself always uses "none".
    ``config``: overrides merged into the default config (see ``merge``),
    applied after diff_ids are filled in, so a test can plant wrong values.

    Returns {"config_digest", "diff_ids", "layer_digests", "repotag",
    "config", "v1_ids", "layout"}; digests are "sha256:<hex>" strings.
    """
    if layout not in ("legacy", "oci", "podman"):
        raise ValueError("unknown layout %r" % (layout,))
    pairs = [_layer_blob(source, compression) for source in layers]
    raw_hexes = [raw.sha256() for raw, _ in pairs]
    stored = [blob for _, blob in pairs]
    stored_hexes = [b.sha256() if b is not r else h
                    for (r, b), h in zip(pairs, raw_hexes)]
    diff_ids = ["sha256:" + h for h in raw_hexes]

    cfg = merge(default_config(diff_ids), config)
    config_bytes = _json_bytes(cfg)
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    v1ids = _v1_ids(diff_ids)

    arc = _Archive()
    if layout == "legacy":
        _build_legacy(arc, stored, config_hex, config_bytes, cfg, repotag,
                      v1ids)
    elif layout == "podman":
        _build_podman(arc, stored, raw_hexes, config_hex, config_bytes, cfg,
                      repotag, v1ids)
    else:
        _build_oci(arc, stored, stored_hexes, config_hex, config_bytes,
                   repotag, compression)
    arc.write(path)

    return {
        "config_digest": "sha256:" + config_hex,
        "diff_ids": diff_ids,
        "layer_digests": ["sha256:" + h for h in stored_hexes],
        "repotag": repotag,
        "config": cfg,
        "v1_ids": v1ids,
        "layout": layout,
    }


def sample_layers():
    """Three small layers covering the common entry kinds (for quick tests)."""
    base = layer([
        ("dir", "bin"),
        ("file", "bin/sh", b"#!/bin/true\n", {"mode": 0o755}),
        ("dir", "etc"),
        ("file", "etc/os-release", b"ID=demo\n"),
        ("symlink", "etc/localtime", "/usr/share/zoneinfo/UTC"),
        ("dir", "tmp", {"mode": 0o1777}),
    ])
    app = layer([
        ("dir", "app"),
        ("file", "app/main.py", b"print('hello')\n", {"mtime": EPOCH + 60}),
        ("dir", "app/__pycache__"),
        ("file", "app/__pycache__/main.cpython-311.pyc", b"\x00pyc" * 8),
        ("hardlink", "app/main-link.py", "app/main.py"),
    ])
    top = layer([
        ("whiteout", "etc/os-release"),
        ("file", "app/ping", b"\x7fELF", {
            "mode": 0o755, "xattrs": {"security.capability":
                                      b"\x01\x00\x00\x02\x00\x20\x00\x00"
                                      + b"\x00" * 12}}),
    ])
    return [base, app, top]
