"""tar:// in and out, checked by the real peers: skopeo inspects, dockerd and podman load
and run what we wrote."""
import io
import json
import os
import shutil
import tarfile

import pytest

from tests import imagebuilder as ib
from tests.cli import occystrap

pytestmark = pytest.mark.functional

LAYOUTS = [("legacy", "none"), ("oci", "gzip"), ("oci", "zstd"), ("podman", "none")]


def read_output(path):
    """(manifest entry, config dict, {layer path: [TarInfo]}) of a docker-save tarball."""
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        config = json.load(tar.extractfile(manifest["Config"]))
        layers = {}
        for name in manifest["Layers"]:
            with tarfile.open(fileobj=io.BytesIO(tar.extractfile(name).read())) as layer:
                layers[name] = layer.getmembers()
    return manifest, config, layers


@pytest.fixture(params=LAYOUTS, ids=["-".join(p) for p in LAYOUTS])
def image(request, tmp_path):
    layout, compression = request.param
    path = tmp_path / ("in-%s-%s.tar" % request.param)
    info = ib.build_image(path, ib.sample_layers(), layout=layout, compression=compression,
                          repotag="example.com/occy/%s-%s:1.0" % request.param)
    return path, info


def test_copy_keeps_image_identity(image, tmp_path, skopeo):
    path, info = image
    out = tmp_path / "out.tar"
    proc = occystrap("process", "tar://%s" % path, "tar://%s" % out, check=True)
    assert proc.stderr.strip().splitlines()[-1].startswith("Summary: 3 layers, ")
    assert proc.stderr.strip().endswith("verified OK")
    inspected = skopeo.inspect("docker-archive:%s" % out)
    assert inspected["Layers"] == info["diff_ids"]
    manifest, config, _layers = read_output(out)
    assert config["rootfs"]["diff_ids"] == info["diff_ids"]
    assert manifest["RepoTags"] == [info["repotag"]]
    assert manifest["Config"] == info["config_digest"].split(":")[1] + ".json"


def test_normalize_and_exclude_load_into_dockerd(image, tmp_path, dockerd, skopeo):
    path, info = image
    out = tmp_path / "out.tar"
    occystrap("process", "tar://%s" % path, "tar://%s" % out, "-f",
               "normalize-timestamps:ts=1000", "-f", "exclude:pattern=*.pyc,app/main-link.py",
               check=True)
    manifest, config, layers = read_output(out)
    members = [m for ms in layers.values() for m in ms]
    assert {m.mtime for m in members} == {1000}
    names = {m.name for m in members}
    assert "app/__pycache__/main.cpython-311.pyc" not in names
    assert "app/main-link.py" not in names
    assert "etc/.wh.os-release" in names
    ping = next(m for m in members if m.name == "app/ping")
    assert ping.pax_headers["SCHILY.xattr.security.capability"].startswith("\x01")
    assert skopeo.inspect("docker-archive:%s" % out)["Layers"] == config["rootfs"]["diff_ids"]
    assert config["rootfs"]["diff_ids"] != info["diff_ids"]
    assert "Loaded image: %s" % info["repotag"] in dockerd.load(out)
    loaded = dockerd.inspect_image(info["repotag"])
    assert loaded["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
    assert loaded["Id"] == "sha256:" + manifest["Config"][:-len(".json")]
    dockerd.docker("rmi", info["repotag"])


def test_twins_write_identical_tarballs(tmp_path):
    path = tmp_path / "in.tar"
    ib.build_image(path, ib.sample_layers(), layout="oci", compression="gzip")
    outputs = []
    for pure in (False, True):
        out = tmp_path / ("out-%s.tar" % pure)
        occystrap("-j", "1", "process", "tar://%s" % path, "tar://%s" % out, "-f",
                   "normalize-timestamps", "-f", "exclude:pattern=etc/*", pure=pure, check=True)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def _busybox_image(tmp_path):
    busybox = shutil.which("busybox")
    if busybox is None or not os.path.realpath(busybox).startswith("/"):
        pytest.skip("busybox-static is not installed")
    with open(busybox, "rb") as fileobj:
        binary = fileobj.read()
    base = ib.layer([("dir", "bin"), ("file", "bin/busybox", binary, {"mode": 0o755}),
                     ("symlink", "bin/sh", "busybox"), ("dir", "tmp", {"mode": 0o1777})])
    extra = ib.layer([("dir", "etc"), ("file", "etc/greeting", b"hello from occystrap\n"),
                      ("file", "etc/secret.key", b"do not ship\n")])
    path = tmp_path / "busybox.tar"
    ib.build_image(path, [base, extra], repotag="example.com/occy/busybox:1",
                   config={"config": {"Cmd": ["/bin/busybox", "cat", "/etc/greeting"],
                                      "Entrypoint": None, "WorkingDir": "/"}})
    return path


@pytest.mark.parametrize("daemon", ["dockerd", "podman"])
def test_rewritten_image_runs(daemon, tmp_path, request):
    peer = request.getfixturevalue(daemon)
    path = _busybox_image(tmp_path)
    out = tmp_path / "clean.tar"
    occystrap("process", "tar://%s" % path, "tar://%s" % out,
               "-f", "exclude:pattern=*.key", "-f", "normalize-timestamps", check=True)
    peer.load(out)
    ref = "example.com/occy/busybox:1"
    if daemon == "podman":      # podman's CLI on the same storage (the compat run API
        run_cli = peer.podman   # cannot attach here), with the ulimits this sandbox allows
        flags = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
    else:
        run_cli, flags = peer.docker, []
    run = run_cli("run", "--rm", "--pull=never", "--network", "none", *flags, ref)
    assert run.stdout == "hello from occystrap\n"
    missing = run_cli("run", "--rm", "--pull=never", "--network", "none", *flags, ref,
                      "/bin/busybox", "ls", "/etc/secret.key", check=False)
    assert missing.returncode != 0
    peer.docker("rmi", ref)


def test_output_is_identical_whatever_the_parallelism(tmp_path):
    path = tmp_path / "in.tar"
    layers = [ib.layer([("file", "f%d" % i, os.urandom(300000))]) for i in range(6)]
    ib.build_image(path, layers)
    outputs = set()
    for jobs in ("1", "3", "8"):
        out = tmp_path / ("out-%s.tar" % jobs)
        occystrap("-j", jobs, "process", "tar://%s" % path, "tar://%s" % out,
                  "-f", "normalize-timestamps", check=True)
        outputs.add(out.read_bytes())
    assert len(outputs) == 1
