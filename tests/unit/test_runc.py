"""Tests for occystrap.rootfs.runc: the oci:// bundle config.json (spec B.7, Env/User fixed)."""
import json
import os
import shutil
import subprocess

import pytest

from occystrap.rootfs import runc
from occystrap.errors import InputError

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def image(**config):
    return {"architecture": "amd64", "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": []}}


def test_template_fields():
    spec = runc.runc_config(image(Cmd=["sh"]))
    assert spec["ociVersion"] == "1.0.2-dev"
    assert spec["hostname"] == "occystrap"
    assert spec["root"] == {"path": "rootfs", "readonly": True}
    process = spec["process"]
    assert process["terminal"] is False
    assert process["user"] == {"uid": 0, "gid": 0}
    assert process["noNewPrivileges"] is True
    assert process["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    for kind in ("bounding", "effective", "permitted", "ambient"):
        assert process["capabilities"][kind] == CAPS
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert [m["destination"] for m in spec["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    assert mounts["/proc"]["type"] == "proc"
    assert mounts["/dev"]["type"] == "tmpfs"
    assert mounts["/dev/pts"]["type"] == "devpts"
    assert mounts["/dev/shm"]["source"] == "shm"
    assert mounts["/dev/mqueue"]["type"] == "mqueue"
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert [ns["type"] for ns in spec["linux"]["namespaces"]] == [
        "pid", "network", "ipc", "uts", "mount", "cgroup"]
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
    assert "/sys/firmware" in spec["linux"]["maskedPaths"]
    assert "/proc/sys" in spec["linux"]["readonlyPaths"]


def test_configs_are_independent():
    first = runc.runc_config(image(Cmd=["a"]))
    first["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    first["mounts"].clear()
    second = runc.runc_config(image(Cmd=["b"]))
    assert second["process"]["capabilities"]["bounding"] == CAPS
    assert second["process"]["capabilities"]["effective"] == CAPS
    assert len(second["mounts"]) == 7


@pytest.mark.parametrize("config, args", [
    ({"Entrypoint": ["/bin/app", "--flag"], "Cmd": ["serve", "-v"]},
     ["/bin/app", "--flag", "serve", "-v"]),
    ({"Entrypoint": ["/entry"]}, ["/entry"]),
    ({"Cmd": ["/bin/sh", "-c", "echo hi"]}, ["/bin/sh", "-c", "echo hi"]),
    ({"Entrypoint": None, "Cmd": ["x"]}, ["x"]),
    ({}, ["sh"]),
])
def test_args(config, args):
    assert runc.runc_config(image(**config))["process"]["args"] == args


@pytest.mark.parametrize("workdir, cwd", [("/srv/app", "/srv/app"), ("", "/"), (None, "/")])
def test_cwd(workdir, cwd):
    assert runc.runc_config(image(WorkingDir=workdir))["process"]["cwd"] == cwd


def test_cwd_default_when_unset():
    assert runc.runc_config(image())["process"]["cwd"] == "/"


def test_env_copied_with_defaults_added():
    env = runc.runc_config(image(Env=["FOO=bar", "EMPTY=", "EQ=a=b"]))["process"]["env"]
    assert env == [DEFAULT_PATH, "FOO=bar", "EMPTY=", "EQ=a=b", "TERM=xterm"]


def test_env_image_values_win():
    env = runc.runc_config(image(Env=["PATH=/opt/bin:/bin", "TERM=dumb", "A=1", "A=2"]))
    assert env["process"]["env"] == ["PATH=/opt/bin:/bin", "TERM=dumb", "A=2"]


def test_env_absent():
    for config in (image(), image(Env=None), {"architecture": "amd64"}):
        assert runc.runc_config(config)["process"]["env"] == [DEFAULT_PATH, "TERM=xterm"]


def test_env_entries_without_equals_dropped():
    env = runc.runc_config(image(Env=["JUSTNAME", "X=1"]))["process"]["env"]
    assert env == [DEFAULT_PATH, "X=1", "TERM=xterm"]


@pytest.mark.parametrize("user, expected", [
    ("1000", {"uid": 1000, "gid": 0}),
    ("1000:2000", {"uid": 1000, "gid": 2000}),
    ("0:0", {"uid": 0, "gid": 0}),
    ("", {"uid": 0, "gid": 0}),
    (None, {"uid": 0, "gid": 0}),
    ("nobody", {"uid": 0, "gid": 0}),
    ("1000:staff", {"uid": 0, "gid": 0}),
    ("-1", {"uid": 0, "gid": 0}),
])
def test_user(user, expected):
    assert runc.runc_config(image(User=user))["process"]["user"] == expected


def test_write_bundle_files(tmp_path):
    config = image(Entrypoint=["/app"], Cmd=["--x"], Env=["K=v"], WorkingDir="/w",
                   User="7:8", Labels={"é": "ü"})
    raw = json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode()
    runc.write_bundle_files(str(tmp_path), raw)
    assert (tmp_path / "container-config.json").read_bytes() == raw
    text = (tmp_path / "config.json").read_text()
    spec = json.loads(text)
    assert text == json.dumps(spec, indent=4, sort_keys=True)
    assert spec == runc.runc_config(config)
    assert spec["process"]["args"] == ["/app", "--x"]
    assert spec["process"]["env"] == [DEFAULT_PATH, "K=v", "TERM=xterm"]
    assert spec["process"]["user"] == {"uid": 7, "gid": 8}
    assert spec["process"]["cwd"] == "/w"
    assert sorted(os.listdir(tmp_path)) == ["config.json", "container-config.json"]
    assert oct(os.stat(tmp_path / "config.json").st_mode & 0o777) == oct(0o644)


def test_write_bundle_files_replaces_existing(tmp_path):
    (tmp_path / "config.json").write_text("old")
    runc.write_bundle_files(str(tmp_path), json.dumps(image(Cmd=["new"])).encode())
    assert json.loads((tmp_path / "config.json").read_text())["process"]["args"] == ["new"]
    assert sorted(os.listdir(tmp_path)) == ["config.json", "container-config.json"]


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe"])
def test_write_bundle_files_bad_config(tmp_path, raw):
    with pytest.raises(InputError):
        runc.write_bundle_files(str(tmp_path), raw)
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_capabilities_match_runc_spec(tmp_path):
    """The capability sets are runc's own default: since runc 1.1.2 (CVE-2022-29162)
    `runc spec` has no inheritable set, which 0.4.17's older template still carried."""
    subprocess.run(["runc", "spec"], cwd=tmp_path, check=True)
    reference = json.loads((tmp_path / "config.json").read_text())["process"]["capabilities"]
    ours = runc.runc_config(image(Cmd=["sh"]))["process"]["capabilities"]
    assert ours == reference
    assert "inheritable" not in ours
