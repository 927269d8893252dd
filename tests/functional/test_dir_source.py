"""dir:// as a source: what our dir:// sink writes reads back unchanged, checked by skopeo,
dockerd and docker-registry; broken directories give one Error line and no output."""
import hashlib
import json
import os
import shutil
import tarfile

import pytest

from tests import imagebuilder as ib
from tests.cli import occystrap

pytestmark = pytest.mark.functional


def build(tmp_path, name, repotag, layers=None):
    path = tmp_path / name
    info = ib.build_image(path, layers or ib.sample_layers(), repotag=repotag)
    return path, info


def to_dir(tar, directory, query=""):
    occystrap("process", "tar://%s" % tar, "dir://%s%s" % (directory, query), check=True)


def tar_layers(path):
    """{diff_id: layer bytes} and the manifest entry of a docker-save tarball."""
    with tarfile.open(path) as tar:
        entry = json.load(tar.extractfile("manifest.json"))[0]
        config = json.load(tar.extractfile(entry["Config"]))
        blobs = [tar.extractfile(name).read() for name in entry["Layers"]]
    return dict(zip(config["rootfs"]["diff_ids"], blobs)), entry


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_dir_to_tar_roundtrip_keeps_identity(tmp_path, skopeo):
    src, info = build(tmp_path, "in.tar", "example.com/occy/dirsrc:1.0")
    to_dir(src, tmp_path / "d")
    out = tmp_path / "back.tar"
    proc = occystrap("process", "dir://%s" % (tmp_path / "d"), "tar://%s" % out, check=True)
    assert proc.stderr.strip().endswith("verified OK")
    inspected = skopeo.inspect("docker-archive:%s" % out)
    assert inspected["Layers"] == info["diff_ids"]
    assert inspected["Digest"] == skopeo.inspect("docker-archive:%s" % src)["Digest"]
    layers, entry = tar_layers(out)
    original, _ = tar_layers(src)
    assert layers == original                          # byte for byte, keyed by diff_id
    assert all(sha(data) == diff_id for diff_id, data in layers.items())
    assert entry["RepoTags"] == ["example.com/occy/dirsrc:1.0"]
    assert entry["Config"] == info["config_digest"].split(":")[1] + ".json"
    # E.2 #15: no doubled layer.tar path
    assert all(name.count("layer.tar") == 1 for name in entry["Layers"])


def test_dir_to_registry_roundtrip(tmp_path, registry, skopeo):
    src, info = build(tmp_path, "in.tar", "example.com/occy/dirpush:2")
    to_dir(src, tmp_path / "d")
    dest = "registry://%s/occy/dirpush:2" % registry.url
    occystrap("--insecure", "process", "dir://%s" % (tmp_path / "d"), dest, check=True)
    ref = "docker://%s/occy/dirpush:2" % registry.url
    config = skopeo.inspect(ref, config=True, tls_verify=False)
    assert config["rootfs"]["diff_ids"] == info["diff_ids"]
    raw = skopeo.inspect(ref, raw=True, tls_verify=False)
    assert raw["config"]["digest"] == info["config_digest"]
    back = tmp_path / "back.tar"
    skopeo("copy", "--src-tls-verify=false", ref, "docker-archive:%s" % back)
    layers, _entry = tar_layers(back)
    original, _ = tar_layers(src)
    assert layers == original


def test_unique_names_directory_holds_two_images(tmp_path, skopeo):
    first, info1 = build(tmp_path, "a.tar", "example.com/occy/one:1")
    second, info2 = build(tmp_path, "b.tar", "example.com/occy/two:1",
                          layers=ib.sample_layers()[:2])
    shared = tmp_path / "shared"
    to_dir(first, shared, "?unique_names=true")
    to_dir(second, shared, "?unique_names=true")
    catalog = json.loads((shared / "catalog.json").read_text())
    assert catalog == {"example.com/occy/one": {"1": "manifest-example.com_occy_one-1.json"},
                       "example.com/occy/two": {"1": "manifest-example.com_occy_two-1.json"}}
    # layer files are named by diff_id and hash to it; shared layers are stored once
    layer_dirs = sorted(p.name for p in shared.iterdir() if p.is_dir())
    assert layer_dirs == sorted(d.split(":")[1] for d in info1["diff_ids"])
    for name in layer_dirs:
        assert sha((shared / name / "layer.tar").read_bytes()) == "sha256:" + name

    proc = occystrap("process", "dir://%s" % shared, "tar://%s" % (tmp_path / "x.tar"),
                     check=False)
    assert "choose one with ?image=NAME&tag=TAG" in proc.stderr
    assert "example.com/occy/one:1, example.com/occy/two:1" in proc.stderr
    assert not (tmp_path / "x.tar").exists()

    # tag=1 must stay the string "1", not the URI grammar's True
    for image, info in (("example.com/occy/one", info1), ("example.com/occy/two", info2)):
        out = tmp_path / ("%s.tar" % image.rsplit("/", 1)[1])
        occystrap("process", "dir://%s?image=%s&tag=1" % (shared, image), "tar://%s" % out,
                   check=True)
        assert skopeo.inspect("docker-archive:%s" % out)["Layers"] == info["diff_ids"]
        assert tar_layers(out)[1]["RepoTags"] == ["%s:1" % image]


def test_overwritten_manifest_is_reported(tmp_path):
    """Without unique_names a second image replaces manifest.json: the first is gone."""
    first, _ = build(tmp_path, "a.tar", "example.com/occy/old:1")
    second, info2 = build(tmp_path, "b.tar", "example.com/occy/new:1",
                          layers=ib.sample_layers()[:1])
    shared = tmp_path / "shared"
    to_dir(first, shared)
    to_dir(second, shared)
    proc = occystrap("process", "dir://%s?image=example.com/occy/old" % shared,
                     "tar://%s" % (tmp_path / "x.tar"), check=False)
    assert "manifest.json now holds example.com/occy/new:1" in proc.stderr
    out = tmp_path / "new.tar"
    occystrap("process", "dir://%s?image=example.com/occy/new&tag=1" % shared,
              "tar://%s" % out, check=True)
    assert list(tar_layers(out)[0]) == info2["diff_ids"]


def test_expanded_directory_reads_back_from_its_layer_files(tmp_path, skopeo):
    src, info = build(tmp_path, "in.tar", "example.com/occy/expanded:1")
    expanded = tmp_path / "e"
    to_dir(src, expanded, "?expand=true")
    assert (expanded / "manifest" / "app" / "main.py").is_file()
    out = tmp_path / "back.tar"
    occystrap("process", "dir://%s" % expanded, "tar://%s" % out, check=True)
    assert skopeo.inspect("docker-archive:%s" % out)["Layers"] == info["diff_ids"]
    # without its layer files the tree alone cannot be read back
    shutil.rmtree(expanded / info["diff_ids"][1].split(":")[1])
    proc = occystrap("process", "dir://%s" % expanded, "tar://%s" % (tmp_path / "x.tar"),
                     check=False)
    assert "is missing (the expanded tree" in proc.stderr
    assert not (tmp_path / "x.tar").exists()


def _break(kind, directory, info):
    layer = directory / info["diff_ids"][0].split(":")[1] / "layer.tar"
    if kind == "missing-layer":
        layer.unlink()
    elif kind == "truncated-layer":
        layer.write_bytes(layer.read_bytes()[:1024])
    elif kind == "tampered-layer":
        data = layer.read_bytes()
        assert b"ID=demo" in data
        layer.write_bytes(data.replace(b"ID=demo", b"ID=DEMO"))
    elif kind == "bad-manifest":
        (directory / "manifest.json").write_text("[{")
    elif kind == "missing-config":
        (directory / (info["config_digest"].split(":")[1] + ".json")).unlink()
    elif kind == "no-manifest":
        (directory / "manifest.json").unlink()
        (directory / "catalog.json").unlink()
    elif kind == "escaping-layer":
        manifest = json.loads((directory / "manifest.json").read_text())
        manifest[0]["Layers"][0] = "../../etc/passwd"
        (directory / "manifest.json").write_text(json.dumps(manifest))
    elif kind == "unknown-image":
        pass
    elif kind.startswith("symlinked-"):
        # the real file moves out of the directory, a symlink stays: without the check
        # the image would read back fine, from outside
        name = {"layer": layer.relative_to(directory),
                "config": info["config_digest"].split(":")[1] + ".json",
                "manifest": "manifest.json", "catalog": "catalog.json"}[kind[10:]]
        outside = directory.parent / "outside"
        outside.mkdir()
        (directory / name).rename(outside / "moved")
        (directory / name).symlink_to(outside / "moved")


BROKEN = {
    "missing-layer": "layer file %s/layer.tar is missing",
    "truncated-layer": "truncated tar stream",
    "tampered-layer": "content hashes to",
    "bad-manifest": "manifest.json is not valid JSON",
    "missing-config": "is missing",
    "no-manifest": "is not an occystrap directory image",
    "escaping-layer": "layer path leaves the directory",
    "unknown-image": "holds no image nosuch:*",
    "symlinked-layer": "layer %s/layer.tar is a symlink out of the directory",
    "symlinked-config": "is a symlink out of the directory",
    "symlinked-manifest": "manifest.json is a symlink out of the directory",
    "symlinked-catalog": "catalog.json is a symlink out of the directory",
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_directory_is_one_error_line(kind, tmp_path):
    src, info = build(tmp_path, "in.tar", "example.com/occy/broken:1")
    directory = tmp_path / "d"
    to_dir(src, directory)
    _break(kind, directory, info)
    query = "?image=nosuch" if kind == "unknown-image" else ""
    out = tmp_path / "out.tar"
    proc = occystrap("process", "dir://%s%s" % (directory, query), "tar://%s" % out,
                     check=False)
    expected = BROKEN[kind]
    if "%s" in expected:
        expected %= info["diff_ids"][0].split(":")[1]
    assert expected in proc.stderr
    assert not out.exists()
    assert [p for p in os.listdir(tmp_path) if p.endswith(".partial")] == []


def test_symlink_inside_the_directory_is_followed(tmp_path, skopeo):
    src, info = build(tmp_path, "in.tar", "example.com/occy/linked:1")
    directory = tmp_path / "d"
    to_dir(src, directory)
    layer = directory / info["diff_ids"][0].split(":")[1] / "layer.tar"
    layer.rename(directory / "kept.tar")
    layer.symlink_to("../kept.tar")
    out = tmp_path / "out.tar"
    occystrap("process", "dir://%s" % directory, "tar://%s" % out, check=True)
    assert skopeo.inspect("docker-archive:%s" % out)["Layers"] == info["diff_ids"]


@pytest.mark.parametrize("make", ["absent", "file", "empty", "bundle"])
def test_not_a_directory_image(make, tmp_path):
    target = tmp_path / "target"
    if make == "file":
        target.write_text("x")
    elif make == "empty":
        target.mkdir()
    elif make == "bundle":
        src, _ = build(tmp_path, "in.tar", "example.com/occy/bundle:1")
        occystrap("process", "tar://%s" % src, "oci://%s" % target, check=True)
    proc = occystrap("process", "dir://%s" % target, "tar://%s" % (tmp_path / "o.tar"),
                     check=False)
    message = {"absent": "No such directory", "file": "Not a directory"}.get(
        make, "expanded root filesystems and OCI bundles cannot be read back")
    assert message in proc.stderr
    assert not (tmp_path / "o.tar").exists()
