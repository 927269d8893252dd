"""The deprecated 0.4.17 commands run for real: each must give what its modern equivalent
gives, checked by skopeo, dockerd and docker-registry; none prints a Summary line."""
import filecmp
import json
import os
import tarfile

import pytest

from tests import imagebuilder as ib
from tests import peers
from tests.cli import occystrap

pytestmark = pytest.mark.functional

WARNING = "DeprecationWarning: The command '%s' is deprecated."


def legacy(command, *args, options=(), check=True):
    """Run a legacy command; its first stderr line is the deprecation warning."""
    proc = occystrap(*options, command, *args, check=check)
    assert proc.stderr.splitlines()[0] == WARNING % command
    assert "Summary:" not in proc.stderr
    return proc


def build(tmp_path, repotag, name="in.tar"):
    path = tmp_path / name
    return path, ib.build_image(path, ib.sample_layers(), repotag=repotag)


def read_tarball(path):
    with tarfile.open(path) as tar:
        entry = json.load(tar.extractfile("manifest.json"))[0]
        config = json.load(tar.extractfile(entry["Config"]))
        names = tar.getnames()
    return entry, config, names


def same_tree(a, b):
    """Two directory trees hold the same names and the same file bytes."""
    cmp = filecmp.dircmp(a, b)
    assert not cmp.left_only and not cmp.right_only, (cmp.left_only, cmp.right_only)
    _match, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)
    for sub in cmp.common_dirs:
        same_tree(os.path.join(a, sub), os.path.join(b, sub))


@pytest.mark.parametrize("flags,query", [((), ""),
                                         (("--use-unique-names",), "?unique_names=true"),
                                         (("--expand",), "?expand=true")])
def test_tarfile_to_extracted_equals_process(flags, query, tmp_path):
    src, info = build(tmp_path, "example.com/occy/legacy-ex:1")
    legacy("tarfile-to-extracted", *flags, src, tmp_path / "old")
    occystrap("process", "tar://%s" % src, "dir://%s%s" % (tmp_path / "new", query), check=True)
    same_tree(tmp_path / "old", tmp_path / "new")
    names = os.listdir(tmp_path / "old")
    assert ("manifest-example.com_occy_legacy-ex-1.json" in names) == ("unique" in query)
    assert ("manifest.json" in names) == ("unique" not in query)
    if "expand" in query:
        assert (tmp_path / "old" / "manifest" / "app" / "main.py").is_file()
    for diff_id in info["diff_ids"]:
        assert (tmp_path / "old" / diff_id.split(":")[1] / "layer.tar").is_file()


@pytest.mark.parametrize("flags", [(), ("--script-friendly",), ("--regex",)])
def test_search_layers_tarfile_equals_search(flags, tmp_path):
    src, _info = build(tmp_path, "example.com/occy/legacy-search:1")
    pattern = r"main.*\.py$" if "--regex" in flags else "*.py"
    old = legacy("search-layers-tarfile", *flags, src, pattern)
    new = occystrap("search", *flags, "tar://%s" % src, pattern, check=True)
    assert old.stdout == new.stdout
    assert "app/main.py" in old.stdout


def test_recreate_image_roundtrip(tmp_path, skopeo, dockerd):
    """tarfile-to-extracted, then recreate-image: skopeo and dockerd accept the result and
    its layers are `<id>/layer.tar` (0.4.17 wrote `<id>/layer.tar/layer.tar`, E.2 #15)."""
    repotag = "example.com/occy/legacy-recreate:3"
    src, info = build(tmp_path, repotag)
    other, _ = build(tmp_path, "example.com/occy/legacy-other:3", name="other.tar")
    shared = tmp_path / "shared"
    legacy("tarfile-to-extracted", "--use-unique-names", src, shared)
    legacy("tarfile-to-extracted", "--use-unique-names", other, shared)
    out = tmp_path / "recreated.tar"
    legacy("recreate-image", shared, "example.com/occy/legacy-recreate", "3", out)
    entry, config, names = read_tarball(out)
    assert entry["RepoTags"] == [repotag]
    assert entry["Layers"] == ["%s/layer.tar" % d.split(":")[1] for d in info["diff_ids"]]
    assert not any(name.endswith("layer.tar/layer.tar") for name in names)
    assert entry["Config"] == info["config_digest"].split(":")[1] + ".json"
    inspected = skopeo.inspect("docker-archive:%s" % out)
    assert inspected["Layers"] == info["diff_ids"]
    dockerd.docker("rmi", repotag, check=False)
    assert "Loaded image: %s" % repotag in dockerd.load(out)
    assert dockerd.inspect_image(repotag)["Id"] == info["config_digest"]
    dockerd.docker("rmi", repotag)

    # --normalize-timestamps equals `-f normalize-timestamps:ts=N`, and a short image name
    # (0.4.17's legacy commands had no registry host) still finds the image
    norm = tmp_path / "norm.tar"
    legacy("recreate-image", "--normalize-timestamps", "--timestamp", "1000", shared,
           "occy/legacy-recreate", "3", norm)
    modern = tmp_path / "modern.tar"
    occystrap("process", "dir://%s?image=%s&tag=3" % (shared, repotag.rsplit(":", 1)[0]),
              "tar://%s" % modern, "-f", "normalize-timestamps:ts=1000", check=True)
    assert read_tarball(norm)[0] == read_tarball(modern)[0]
    assert read_tarball(norm)[1]["rootfs"] != config["rootfs"]
    with tarfile.open(norm) as tar:
        layer = tar.extractfile(read_tarball(norm)[0]["Layers"][1])
        with tarfile.open(fileobj=layer) as inner:
            assert {m.mtime for m in inner.getmembers()} == {1000}


def test_recreate_image_of_missing_image_is_one_error(tmp_path):
    src, _ = build(tmp_path, "example.com/occy/legacy-missing:1")
    legacy("tarfile-to-extracted", src, tmp_path / "d")
    proc = legacy("recreate-image", tmp_path / "d", "nosuch", "1", tmp_path / "x.tar",
                  check=False)
    assert "holds no image nosuch:1" in proc.stderr
    assert not (tmp_path / "x.tar").exists()


def test_recreate_image_refuses_a_layer_symlinked_out(tmp_path):
    """A layer.tar that is a symlink out of the directory is refused, not packed."""
    src, info = build(tmp_path, "example.com/occy/legacy-link:1")
    legacy("tarfile-to-extracted", src, tmp_path / "d")
    layer = tmp_path / "d" / info["diff_ids"][0].split(":")[1] / "layer.tar"
    layer.rename(tmp_path / "outside.tar")
    layer.symlink_to(tmp_path / "outside.tar")
    proc = legacy("recreate-image", tmp_path / "d", "occy/legacy-link", "1",
                  tmp_path / "x.tar", check=False)
    assert "layer.tar is a symlink out of the directory" in proc.stderr
    assert not (tmp_path / "x.tar").exists()


def test_docker_to_tarfile_against_dockerd(tmp_path, dockerd, skopeo):
    repotag = "example.com/occy/legacy-docker:5"
    src, info = build(tmp_path, repotag)
    dockerd.load(src)
    try:
        out = tmp_path / "out.tar"
        legacy("docker-to-tarfile", "--socket", dockerd.socket,
               "example.com/occy/legacy-docker", "5", out)
        entry, config, _names = read_tarball(out)
        assert entry["RepoTags"] == [repotag]
        assert config["rootfs"]["diff_ids"] == info["diff_ids"]
        assert skopeo.inspect("docker-archive:%s" % out)["Layers"] == info["diff_ids"]
        modern = tmp_path / "modern.tar"
        occystrap("process", "docker://%s?socket=%s" % (repotag, dockerd.socket),
                   "tar://%s" % modern, check=True)
        assert read_tarball(modern)[0] == entry

        norm = tmp_path / "norm.tar"
        legacy("docker-to-tarfile", "--socket", dockerd.socket, "--normalize-timestamps",
               "example.com/occy/legacy-docker", "5", norm)
        assert read_tarball(norm)[1]["rootfs"]["diff_ids"] != info["diff_ids"]

        found = legacy("search-layers-docker", "--socket", dockerd.socket, "--script-friendly",
                       "example.com/occy/legacy-docker", "5", "*.py")
        assert found.stdout == occystrap("search", "--script-friendly", "docker://%s?socket=%s"
                                         % (repotag, dockerd.socket), "*.py",
                                         check=True).stdout
        assert ":app/main.py" in found.stdout

        legacy("docker-to-extracted", "--socket", dockerd.socket, "--use-unique-names",
               "example.com/occy/legacy-docker", "5", tmp_path / "old")
        occystrap("process", "docker://%s?socket=%s" % (repotag, dockerd.socket),
                  "dir://%s?unique_names=true" % (tmp_path / "new"), check=True)
        same_tree(tmp_path / "old", tmp_path / "new")
        assert (tmp_path / "old" / "manifest-example.com_occy_legacy-docker-5.json").is_file()

        legacy("docker-to-oci", "--socket", dockerd.socket, "example.com/occy/legacy-docker",
               "5", tmp_path / "bundle")
        assert (tmp_path / "bundle" / "rootfs" / "app" / "main.py").is_file()
    finally:
        dockerd.docker("rmi", repotag, check=False)


def test_docker_to_tarfile_bad_socket_is_one_error(tmp_path):
    proc = legacy("docker-to-tarfile", "--socket", tmp_path / "none.sock", "x", "1",
                  tmp_path / "o.tar", check=False)
    assert str(tmp_path / "none.sock") in proc.stderr
    assert not (tmp_path / "o.tar").exists()


def test_fetch_commands_against_registry(tmp_path, registry, skopeo):
    src, info = build(tmp_path, "example.com/occy/legacy-fetch:7")
    occystrap("--insecure", "process", "tar://%s" % src,
              "registry://%s/occy/legacy-fetch:7" % registry.url, check=True)
    out = tmp_path / "fetched.tar"
    legacy("fetch-to-tarfile", registry.url, "occy/legacy-fetch", "7", out,
           options=("--insecure",))
    entry, config, _names = read_tarball(out)
    assert config["rootfs"]["diff_ids"] == info["diff_ids"]
    assert entry["Config"] == info["config_digest"].split(":")[1] + ".json"
    assert skopeo.inspect("docker-archive:%s" % out)["Layers"] == info["diff_ids"]

    extracted = tmp_path / "extracted"
    legacy("fetch-to-extracted", "--use-unique-names", registry.url, "occy/legacy-fetch", "7",
           extracted, options=("--insecure",))
    for diff_id in info["diff_ids"]:
        assert (extracted / diff_id.split(":")[1] / "layer.tar").is_file()
    # and back into a tarball by the image name the legacy user knows
    again = tmp_path / "again.tar"
    legacy("recreate-image", extracted, "occy/legacy-fetch", "7", again)
    assert read_tarball(again)[1]["rootfs"]["diff_ids"] == info["diff_ids"]

    found = legacy("search-layers", "--script-friendly", registry.url, "occy/legacy-fetch",
                   "7", "*.py", options=("--insecure",))
    assert found.stdout == occystrap("--insecure", "search", "--script-friendly",
                                     "registry://%s/occy/legacy-fetch:7" % registry.url,
                                     "*.py", check=True).stdout
    assert ":app/main.py" in found.stdout

    bundle = tmp_path / "bundle"
    legacy("fetch-to-oci", registry.url, "occy/legacy-fetch", "7", bundle,
           options=("--insecure",))
    assert (bundle / "rootfs" / "app" / "main.py").is_file()
    assert (bundle / "config.json").is_file()


def test_fetch_to_mounts_against_registry(tmp_path, registry):
    src, info = build(tmp_path, "example.com/occy/legacy-mounts:1")
    occystrap("--insecure", "process", "tar://%s" % src,
              "registry://%s/occy/legacy-mounts:1" % registry.url, check=True)
    target = tmp_path / "mounts"
    try:
        legacy("fetch-to-mounts", registry.url, "occy/legacy-mounts", "1", target,
               options=("--insecure",))
        assert (target / "rootfs" / "app" / "main.py").read_bytes() == b"print('hello')\n"
        assert not (target / "rootfs" / "etc" / "os-release").exists()     # whited out
    finally:
        peers.unmount_under(str(target))


def test_fetch_missing_image_is_one_error(tmp_path, registry):
    out = tmp_path / "o.tar"
    legacy("fetch-to-tarfile", registry.url, "occy/legacy-nosuch", "1", out,
           options=("--insecure",), check=False)
    assert not out.exists()
