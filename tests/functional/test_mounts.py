"""mounts:// on a real overlayfs mount: whiteouts nested deep, opaque and at the root really
hide lower files in the mounted rootfs (upstream E.2 #2 left nested ones visible); unsafe
layers, a busy destination, a non-root user or a missing capability give one Error line and
leave nothing behind.  Needs root, like the transport itself."""
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from occystrap.transports.mounts import sink as mounts_sink
from tests import imagebuilder as ib
from tests import peers
from tests.cli import REPO, occystrap

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounts:// needs root"),
    pytest.mark.skipif(shutil.which("mount") is None, reason="mount is not installed"),
]

REPOTAG = "example.com/occy-mounts/app:1.0"

BASE = ib.layer([
    ("dir", "bin"),
    ("file", "bin/busybox", b"#!busybox\n", {"mode": 0o755}),
    ("hardlink", "bin/sh", "bin/busybox"),
    ("symlink", "bin/ls", "busybox"),
    ("dir", "etc"),
    ("file", "etc/a.conf", b"old a\n"),
    ("symlink", "etc/localtime", "/usr/share/zoneinfo/UTC"),
    ("dir", "etc/sub"),
    ("file", "etc/sub/b.conf", b"b\n"),
    ("file", "etc/sub/keep.conf", b"keep\n"),
    ("dir", "opt"),
    ("file", "opt/old", b"old\n"),
    ("dir", "opt/olddir"),
    ("file", "opt/olddir/x", b"x\n"),
    ("dir", "optional"),
    ("file", "optional/kept", b"kept\n"),
    ("file", "gone.txt", b"gone\n"),
    ("dir", "cache"),
    ("file", "cache/big", b"big\n"),
    ("dir", "usr"),
    ("dir", "usr/share"),
    ("dir", "usr/share/doc"),
    ("dir", "usr/share/doc/pkg"),
    ("file", "usr/share/doc/pkg/README", b"readme\n"),
    ("file", "usr/share/doc/pkg/COPYING", b"gpl\n"),
])
MIDDLE = ib.layer([                      # no usr/ entries: the whiteout's parents are implicit
    ("dir", "app"),
    ("file", "app/main.py", b"print(1)\n"),
    ("hardlink", "app/main-link.py", "app/main.py"),
    ("whiteout", "usr/share/doc/pkg/README"),
])
TOP = ib.layer([
    ("file", "etc/a.conf", b"new a\n"),
    ("whiteout", "etc/sub/b.conf"),      # the upstream bug: a nested whiteout
    ("opaque", "opt"),
    ("file", "opt/new", b"new\n"),
    ("whiteout", "gone.txt"),            # root level
    ("whiteout", "cache"),               # a whole directory
])


@pytest.fixture
def out(tmp_path):
    """PATH for mounts://; everything mounted below tmp_path is unmounted afterwards."""
    yield tmp_path / "OUT"
    peers.unmount_under(str(tmp_path))


def mounted_type(path):
    """fstype of the topmost mount at path, from the kernel's own table."""
    found = None
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            if fields[4] == os.path.realpath(path):
                found = (fields[fields.index("-") + 1], fields[-1])
    return found


def leftovers(directory, keep=("img.tar", "OUT")):
    return sorted(name for name in os.listdir(directory) if name not in keep)


def read(path):
    with open(path, "rb") as fileobj:
        return fileobj.read()


def is_whiteout(path):
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def test_whiteouts_hide_lower_files_in_mounted_rootfs(tmp_path, out):
    info = ib.build_image(tmp_path / "img.tar", [BASE, MIDDLE, TOP], repotag=REPOTAG)
    proc = occystrap("-j", "3", "process", "tar://%s" % (tmp_path / "img.tar"),
                     "mounts://%s" % out, check=True)
    assert proc.stderr.strip().endswith("verified OK")
    assert "umount %s" % (out / "rootfs") in proc.stderr
    rootfs = out / "rootfs"
    assert mounted_type(rootfs)[0] == "overlay"

    # nested whiteouts (2 and 4 levels deep) really delete, siblings stay
    assert sorted(os.listdir(rootfs / "etc/sub")) == ["keep.conf"]
    assert read(rootfs / "etc/sub/keep.conf") == b"keep\n"
    assert os.listdir(rootfs / "usr/share/doc/pkg") == ["COPYING"]
    # opaque: only the upper layer's content, and exactly that directory
    assert os.listdir(rootfs / "opt") == ["new"]
    assert read(rootfs / "opt/new") == b"new\n"
    assert read(rootfs / "optional/kept") == b"kept\n"
    # root level whiteouts of a file and of a whole tree
    assert not os.path.lexists(rootfs / "gone.txt")
    assert not os.path.lexists(rootfs / "cache")
    assert read(rootfs / "etc/a.conf") == b"new a\n"
    # links, modes
    assert os.readlink(rootfs / "bin/ls") == "busybox"
    assert read(rootfs / "bin/ls") == b"#!busybox\n"
    assert os.readlink(rootfs / "etc/localtime") == "/usr/share/zoneinfo/UTC"
    assert os.path.samefile(rootfs / "bin/sh", rootfs / "bin/busybox")
    assert os.path.samefile(rootfs / "app/main-link.py", rootfs / "app/main.py")
    assert stat.S_IMODE(os.stat(rootfs / "bin/busybox").st_mode) == 0o755
    assert sorted(os.listdir(rootfs)) == ["app", "bin", "etc", "opt", "optional", "usr"]

    # the layer directories: whiteouts in overlayfs form, in the member's own directory
    hexes = [diff_id.split(":")[1] for diff_id in info["diff_ids"]]
    top, middle = out / hexes[2] / "layer", out / hexes[1] / "layer"
    assert is_whiteout(top / "etc/sub/b.conf")
    assert not os.path.lexists(top / ".wh.b.conf") and not os.path.lexists(top / "b.conf")
    assert is_whiteout(top / "gone.txt") and is_whiteout(top / "cache")
    assert is_whiteout(middle / "usr/share/doc/pkg/README")
    assert os.getxattr(top / "opt", "trusted.overlay.opaque") == b"y"
    for name in hexes:
        assert "sha256:" + hashlib.sha256(read(out / name / "layer.tar")).hexdigest() \
            == "sha256:" + name
        for _dirpath, dirnames, filenames in os.walk(out / name / "layer"):
            assert not [n for n in dirnames + filenames if n.startswith(".wh.")]

    # the bundle files
    manifest = json.loads(read(out / "manifest.json"))
    assert manifest == [{"Config": "container-config.json", "RepoTags": [REPOTAG],
                         "Layers": ["%s/layer.tar" % name for name in hexes]}]
    assert json.loads(read(out / "catalog.json")) == {
        "example.com/occy-mounts/app": {"1.0": "manifest.json"}}
    assert "sha256:" + hashlib.sha256(read(out / "container-config.json")).hexdigest() \
        == info["config_digest"]
    runtime = json.loads(read(out / "config.json"))
    assert runtime["process"]["args"] == ["/docker-entrypoint.sh", "/bin/sh"]
    assert runtime["root"]["path"] == "rootfs"

    # a writable overlay: changes land in delta/, the layers stay untouched
    (rootfs / "etc/new.conf").write_bytes(b"mine\n")
    os.unlink(rootfs / "etc/a.conf")
    assert read(out / "delta/etc/new.conf") == b"mine\n"
    assert is_whiteout(out / "delta/etc/a.conf")
    assert read(out / hexes[2] / "layer/etc/a.conf") == b"new a\n"
    assert leftovers(tmp_path) == []


def test_repeated_layer_is_stacked_once_at_its_top_place(tmp_path, out):
    """A, B, A: overlayfs refuses the same lowerdir twice; the top A must win, so what B
    deleted comes back and B's changes to A's files are undone."""
    info = ib.build_image(tmp_path / "img.tar", [BASE, TOP, BASE], repotag=REPOTAG)
    occystrap("-j", "4", "process", "tar://%s" % (tmp_path / "img.tar"),
              "mounts://%s" % out, check=True)
    rootfs = out / "rootfs"
    kind, options = mounted_type(rootfs)
    assert kind == "overlay"
    assert options.count(info["diff_ids"][0].split(":")[1]) == 1
    assert read(rootfs / "gone.txt") == b"gone\n"
    assert read(rootfs / "etc/a.conf") == b"old a\n"
    assert sorted(os.listdir(rootfs / "opt")) == ["new", "old", "olddir"]
    manifest = json.loads(read(out / "manifest.json"))
    assert len(manifest[0]["Layers"]) == 3


def test_colon_lowerdir_fallback_mounts_the_same_tree(tmp_path, out):
    """The single `lowerdir=a:b` form that kernels before 6.8 need, on this kernel."""
    info = ib.build_image(tmp_path / "img.tar", [BASE, MIDDLE, TOP], repotag=REPOTAG)
    occystrap("process", "tar://%s" % (tmp_path / "img.tar"), "mounts://%s" % out, check=True)
    subprocess.run(["umount", str(out / "rootfs")], check=True)
    assert mounted_type(out / "rootfs") is None
    lowers = ["%s/layer" % d.split(":")[1] for d in reversed(info["diff_ids"])]
    assert mounts_sink.mount_overlay(str(out), lowers, styles=("colon",)) == "colon"
    kind, options = mounted_type(out / "rootfs")
    assert kind == "overlay" and "lowerdir=" + ":".join(lowers) in options
    assert sorted(os.listdir(out / "rootfs/etc/sub")) == ["keep.conf"]
    assert os.listdir(out / "rootfs/opt") == ["new"]


def test_failed_mount_is_one_error(tmp_path):
    (tmp_path / "rootfs").mkdir()
    with pytest.raises(mounts_sink.OutputError, match="cannot mount overlay at .*rootfs: "):
        mounts_sink.mount_overlay(str(tmp_path), ["missing/layer"])
    assert mounted_type(tmp_path / "rootfs") is None


UNSAFE = {
    "dotdot": [("file", "../escape.txt", b"x")],
    "symlink-escape": [("symlink", "link", "../../../.."), ("file", "link/escape.txt", b"x")],
    "hardlink-outside": [("hardlink", "h", "../../escape.txt")],
    "whiteout-dotdot": [("whiteout", "../escape.txt")],
}


@pytest.mark.parametrize("entries", list(UNSAFE.values()), ids=list(UNSAFE))
def test_unsafe_layer_leaves_nothing(tmp_path, out, entries):
    ib.build_image(tmp_path / "img.tar", [BASE, ib.layer(entries), TOP], repotag=REPOTAG)
    proc = occystrap("process", "tar://%s" % (tmp_path / "img.tar"), "mounts://%s" % out,
                     check=False)
    error = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")][0]
    assert "'..'" in error or "escapes the image root" in error, error
    assert not os.path.lexists(out)
    assert leftovers(tmp_path) == []
    assert not os.path.lexists(tmp_path.parent / "escape.txt")


def test_existing_output_is_refused_untouched(tmp_path, out):
    ib.build_image(tmp_path / "img.tar", [BASE], repotag=REPOTAG)
    out.mkdir()
    (out / "precious").write_bytes(b"mine")
    proc = occystrap("process", "tar://%s" % (tmp_path / "img.tar"), "mounts://%s" % out,
                     check=False)
    assert "Error: Output path exists and is not an empty directory: %s" % out in proc.stderr
    assert os.listdir(out) == ["precious"]
    assert leftovers(tmp_path) == []


def test_empty_existing_directory_is_used(tmp_path, out):
    ib.build_image(tmp_path / "img.tar", [BASE], repotag=REPOTAG)
    out.mkdir()
    occystrap("process", "tar://%s" % (tmp_path / "img.tar"), "mounts://%s" % out, check=True)
    assert read(out / "rootfs/etc/sub/b.conf") == b"b\n"


def run_restricted(setpriv_args, tmp_path, out):
    """The CLI under setpriv: a non-root uid (keeping DAC override so it can reach this
    Python) or root with a capability dropped."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(["setpriv", *setpriv_args, sys.executable, "-m", "occystrap",
                           "process", "tar://%s" % (tmp_path / "img.tar"), "mounts://%s" % out],
                          capture_output=True, text=True, env=env, cwd=REPO,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, proc.stderr
    assert not os.path.lexists(out)
    assert leftovers(tmp_path) == []
    return errors[0]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is not installed")
def test_non_root_is_refused(tmp_path, out):
    ib.build_image(tmp_path / "img.tar", [BASE], repotag=REPOTAG)
    error = run_restricted(["--reuid=65534", "--regid=65534", "--clear-groups",
                            "--inh-caps=+dac_override", "--ambient-caps=+dac_override"],
                           tmp_path, out)
    assert error.startswith("Error: mounts:// needs root")


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv is not installed")
def test_trusted_xattrs_not_permitted(tmp_path, out):
    ib.build_image(tmp_path / "img.tar", [BASE], repotag=REPOTAG)
    error = run_restricted(["--bounding-set=-sys_admin"], tmp_path, out)
    assert error.startswith("Error: mounts:// cannot create overlay whiteouts in %s: "
                            "Operation not permitted" % tmp_path)


def test_dockerd_image_with_real_whiteouts_runs_from_mount(tmp_path, out, dockerd):
    """Whiteouts written by dockerd's own diff (rm of a nested file, rm -rf + mkdir of a
    directory), then the mounted rootfs runs busybox in a chroot."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox-static is not installed")
    base = ib.layer([
        ("dir", "bin"), ("file", "bin/busybox", read(busybox), {"mode": 0o755}),
        ("symlink", "bin/sh", "busybox"), ("dir", "tmp", {"mode": 0o1777}),
        ("dir", "etc"), ("dir", "etc/sub"), ("file", "etc/sub/b.conf", b"b\n"),
        ("file", "etc/sub/keep.conf", b"keep\n"), ("dir", "opt"), ("file", "opt/old", b"o\n"),
    ])
    ib.build_image(tmp_path / "base.tar", [base], repotag="example.com/occy-mounts/base:1",
                   config={"config": {"Entrypoint": None, "Cmd": ["/bin/sh"],
                                      "WorkingDir": "/"}})
    dockerd.load(tmp_path / "base.tar")
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM example.com/occy-mounts/base:1\n"
        "RUN rm /etc/sub/b.conf && rm -rf /opt && mkdir /opt && echo new > /opt/new\n")
    tag = "example.com/occy-mounts/built:1"
    dockerd.docker("build", "--pull=false", "--network", "none", "-t", tag, str(context))
    try:
        dockerd.docker("save", "-o", str(tmp_path / "img.tar"), tag)
    finally:
        dockerd.docker("rmi", tag, "example.com/occy-mounts/base:1", check=False)
    occystrap("process", "tar://%s" % (tmp_path / "img.tar"), "mounts://%s" % out, check=True)
    rootfs = out / "rootfs"
    assert sorted(os.listdir(rootfs / "etc/sub")) == ["keep.conf"]
    assert os.listdir(rootfs / "opt") == ["new"]
    top = out / json.loads(read(out / "manifest.json"))[0]["Layers"][-1].split("/")[0] / "layer"
    assert is_whiteout(top / "etc/sub/b.conf")
    assert (os.listxattr(top / "opt") == ["trusted.overlay.opaque"]
            or is_whiteout(top / "opt/old"))
    proc = subprocess.run(["chroot", str(rootfs), "/bin/busybox", "sh", "-c",
                           "/bin/busybox ls /etc/sub; /bin/busybox cat /opt/new"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["keep.conf", "new"]


def test_layer_xattrs_cannot_steer_overlayfs(tmp_path, out):
    """trusted.overlay.* carried by a member is dropped (only whiteouts may set them);
    other xattrs are kept."""
    forged = ib.layer([("dir", "etc", {"xattrs": {"trusted.overlay.opaque": "y",
                                                 "user.origin": "layer"}}),
                       ("file", "etc/extra", b"extra\n")])
    info = ib.build_image(tmp_path / "img.tar", [BASE, forged], repotag=REPOTAG)
    occystrap("process", "tar://%s" % (tmp_path / "img.tar"), "mounts://%s" % out, check=True)
    layer = out / info["diff_ids"][1].split(":")[1] / "layer"
    assert os.listxattr(layer / "etc") == ["user.origin"]
    assert sorted(os.listdir(out / "rootfs/etc")) == ["a.conf", "extra", "localtime", "sub"]
