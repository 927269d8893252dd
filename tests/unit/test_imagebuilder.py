"""Tests for tests/imagebuilder.py, the deterministic test-image builder.

The builder is what most other tests trust to produce well-formed images, so
these tests check its output with independent readers: the stdlib tarfile,
gzip and hashlib modules, and skopeo when it is installed.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zlib

import pytest
import zstandard

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from tests import imagebuilder as ib  # noqa: E402

LAYOUTS = ["legacy", "oci", "podman"]
COMPRESSIONS = ["none", "gzip", "zstd"]


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def read_archive(path):
    """{name: TarInfo} and {name: bytes of regular files} of an image."""
    infos, files = {}, {}
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            infos[m.name] = m
            if m.isfile():
                files[m.name] = tar.extractfile(m).read()
    return infos, files


def decompress(data):
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        reader = zstandard.ZstdDecompressor().stream_reader(
            io.BytesIO(data), read_across_frames=True)
        return reader.read()
    return data


# --------------------------------------------------------------------------
# layer()

def test_layer_entry_kinds():
    data = ib.layer([
        ("dir", "etc", {"mode": 0o700, "uid": 5, "gid": 6}),
        ("file", "etc/a", b"hello", {"mtime": 1600000000, "uname": "u",
                                     "gname": "g"}),
        ("symlink", "etc/s", "a"),
        ("hardlink", "etc/h", "etc/a"),
        ("whiteout", "usr/lib/gone"),
        ("opaque", "var/cache/"),
        ("fifo", "run/fifo"),
        ("chardev", "dev/null", 1, 3),
        ("file", "bin/ping", b"x", {"xattrs": {
            "security.capability": b"\x01\x00\x00\x02"}}),
        ("file", "t", b"", {"pax": {"atime": "1700000001.5"}}),
    ])
    m = members(data)
    assert m["etc"].isdir() and m["etc"].mode == 0o700
    assert (m["etc"].uid, m["etc"].gid) == (5, 6)
    assert m["etc/a"].size == 5 and m["etc/a"].mtime == 1600000000
    assert (m["etc/a"].uname, m["etc/a"].gname) == ("u", "g")
    assert m["etc/s"].issym() and m["etc/s"].linkname == "a"
    assert m["etc/h"].islnk() and m["etc/h"].linkname == "etc/a"
    assert m["usr/lib/.wh.gone"].isfile()
    assert m["var/cache/.wh..wh..opq"].isfile()
    assert m["run/fifo"].isfifo()
    assert m["dev/null"].ischr() and m["dev/null"].devminor == 3
    assert m["bin/ping"].pax_headers["SCHILY.xattr.security.capability"] \
        == "\x01\x00\x00\x02"
    assert m["t"].pax_headers["atime"] == "1700000001.5"
    assert m["bin/ping"].mtime == ib.EPOCH


def test_layer_is_deterministic():
    entries = [("dir", "a"), ("file", "a/b", b"data")]
    assert ib.layer(entries) == ib.layer(entries)


def test_layer_streams_file_objects():
    data = ib.layer([("file", "big", (io.BytesIO(b"z" * 5000), 5000))])
    assert members(data)["big"].size == 5000


def test_layer_gnu_longname_and_longlink():
    long_name = "d" * 60 + "/" + "f" * 90 + ".txt"
    long_target = "/" + "t" * 150
    data = ib.layer([
        ("file", long_name, b"x"),
        ("symlink", "link", long_target),
    ], fmt=tarfile.GNU_FORMAT)
    assert b"././@LongLink" in data
    assert b"PaxHeader" not in data
    m = members(data)
    assert m[long_name].size == 1
    assert m["link"].linkname == long_target


def test_layer_pax_non_ascii_and_long_names():
    name = "données/日本語/" + "x" * 300
    m = members(ib.layer([("file", name, b"x")]))
    assert name in m


def test_layer_rejects_unknown_kind():
    with pytest.raises(ValueError):
        ib.layer([("socket", "x")])


# --------------------------------------------------------------------------
# compress()

@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_compress_roundtrip(kind):
    data = ib.layer([("file", "a", b"abc" * 10000)])
    for multi in (False, True):
        assert decompress(ib.compress(data, kind, multi=multi)) == data


def test_gzip_multi_member_decompresses_fully():
    data = ib.layer([("file", "a", os.urandom(1000) * 50)])
    blob = ib.compress(data, "gzip", multi=True)
    assert gzip.decompress(blob) == data
    # More than one member: one decompressobj stops at the first member.
    first = zlib.decompressobj(31)
    partial = first.decompress(blob)
    assert first.unused_data and len(partial) < len(data)


def test_zstd_multi_frame():
    data = ib.layer([("file", "a", b"q" * 100000)])
    blob = ib.compress(data, "zstd", multi=True)
    partial = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    assert len(partial) < len(data)
    assert decompress(blob) == data


def test_compress_none_and_unknown():
    assert ib.compress(b"abc", "none") == b"abc"
    with pytest.raises(ValueError):
        ib.compress(b"abc", "bzip2")


# --------------------------------------------------------------------------
# build_image()

def check_common(info, files, layers):
    manifest = json.loads(files["manifest.json"])
    assert len(manifest) == 1
    entry = manifest[0]
    assert entry["RepoTags"] == [info["repotag"]]
    config_bytes = files[entry["Config"]]
    assert sha256(config_bytes) == info["config_digest"]
    config = json.loads(config_bytes)
    assert config == info["config"]
    assert config["rootfs"]["diff_ids"] == info["diff_ids"]
    assert info["diff_ids"] == [sha256(raw) for raw in layers]
    name = info["repotag"].rsplit(":", 1)[0]
    assert name in json.loads(files["repositories"])
    return entry


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_legacy_layout(tmp_path, compression):
    layers = ib.sample_layers()
    path = tmp_path / "img.tar"
    info = ib.build_image(path, layers, compression=compression)
    infos, files = read_archive(path)
    entry = check_common(info, files, layers)
    assert entry["Config"] == info["config_digest"][7:] + ".json"
    for v1id, name, raw, digest in zip(info["v1_ids"], entry["Layers"],
                                       layers, info["layer_digests"]):
        assert name == v1id + "/layer.tar"
        assert infos[v1id].isdir()
        assert files[v1id + "/VERSION"] == b"1.0"
        assert json.loads(files[v1id + "/json"])["id"] == v1id
        assert sha256(files[name]) == digest
        assert decompress(files[name]) == raw
    # docker save order: everything sorted, manifest.json near the end.
    names = list(infos)
    assert names.index("manifest.json") > names.index(entry["Layers"][-1])


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_oci_layout(tmp_path, compression):
    layers = ib.sample_layers()
    path = tmp_path / "img.tar"
    info = ib.build_image(path, layers, layout="oci", compression=compression)
    infos, files = read_archive(path)
    entry = check_common(info, files, layers)
    assert entry["Config"] == "blobs/sha256/" + info["config_digest"][7:]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    desc = index["manifests"][0]
    manifest_bytes = files["blobs/sha256/" + desc["digest"][7:]]
    assert sha256(manifest_bytes) == desc["digest"]
    assert desc["annotations"]["io.containerd.image.name"] == info["repotag"]
    manifest = json.loads(manifest_bytes)
    assert manifest["config"]["digest"] == info["config_digest"]
    assert [d["digest"] for d in manifest["layers"]] == info["layer_digests"]
    for name, raw, desc in zip(entry["Layers"], layers, manifest["layers"]):
        blob = files[name]
        assert sha256(blob) == "sha256:" + name.rsplit("/", 1)[1]
        assert len(blob) == desc["size"]
        assert decompress(blob) == raw
        suffix = {"none": "tar", "gzip": "tar+gzip", "zstd": "tar+zstd"}
        assert desc["mediaType"].endswith(suffix[compression])


def test_podman_layout(tmp_path):
    layers = ib.sample_layers()
    path = tmp_path / "img.tar"
    info = ib.build_image(path, layers, layout="podman")
    infos, files = read_archive(path)
    entry = check_common(info, files, layers)
    hexes = [d[7:] for d in info["diff_ids"]]
    assert entry["Layers"] == [h + ".tar" for h in hexes]
    for v1id, h, raw in zip(info["v1_ids"], hexes, layers):
        link = infos[v1id + "/layer.tar"]
        assert link.issym() and link.linkname == "../%s.tar" % h
        assert files[h + ".tar"] == raw


def test_build_image_is_deterministic(tmp_path):
    for layout in LAYOUTS:
        a, b = tmp_path / "a.tar", tmp_path / "b.tar"
        ib.build_image(a, ib.sample_layers(), layout=layout,
                       compression="none" if layout != "oci" else "gzip")
        ib.build_image(b, ib.sample_layers(), layout=layout,
                       compression="none" if layout != "oci" else "gzip")
        assert a.read_bytes() == b.read_bytes()


def test_build_image_from_layer_files(tmp_path):
    raw = ib.sample_layers()
    paths = []
    for i, data in enumerate(raw):
        p = tmp_path / ("l%d.tar" % i)
        p.write_bytes(data)
        paths.append(p)
    a = ib.build_image(tmp_path / "a.tar", paths)
    b = ib.build_image(tmp_path / "b.tar", raw)
    assert a["diff_ids"] == b["diff_ids"]
    assert (tmp_path / "a.tar").read_bytes() == \
        (tmp_path / "b.tar").read_bytes()


def test_config_defaults_and_overrides(tmp_path):
    info = ib.build_image(tmp_path / "a.tar", ib.sample_layers(), config={
        "config": {"Cmd": ["/app/run"]},
        "history": None,
        "rootfs": {"diff_ids": ["sha256:" + "0" * 64]},
    })
    cfg = info["config"]
    assert cfg["architecture"] == "amd64" and cfg["os"] == "linux"
    assert cfg["config"]["Cmd"] == ["/app/run"]
    assert cfg["config"]["WorkingDir"] == "/app"
    assert "history" not in cfg
    assert cfg["rootfs"] == {"type": "layers",
                             "diff_ids": ["sha256:" + "0" * 64]}
    assert info["diff_ids"] != cfg["rootfs"]["diff_ids"]

    default = ib.default_config(info["diff_ids"])
    assert len(default["history"]) == 4
    assert sum(1 for h in default["history"] if h.get("empty_layer")) == 1


def test_unknown_layout(tmp_path):
    with pytest.raises(ValueError):
        ib.build_image(tmp_path / "x.tar", ib.sample_layers(), layout="zip")


@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo not installed")
@pytest.mark.parametrize("layout", ["legacy", "podman"])
def test_skopeo_accepts(tmp_path, layout):
    path = tmp_path / "img.tar"
    info = ib.build_image(path, ib.sample_layers(), layout=layout)
    out = subprocess.run(
        ["skopeo", "inspect", "docker-archive:%s" % path],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["Layers"] == info["diff_ids"]
    assert doc["Architecture"] == "amd64"
