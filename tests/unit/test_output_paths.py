"""What may stand at an output path (issue 8 §3): nothing but a regular file is renamed
over, symlinks are followed, and an output never replaces its own input."""
import os
import socket
import subprocess
import stat

import pytest

from tests import imagebuilder as ib
from tests.cli import occystrap


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.tar"
    ib.build_image(path, ib.sample_layers(), repotag="example.com/demo/app:1.0")
    return path


def _fifo(path):
    os.mkfifo(path)


def _socket(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()                    # the socket file stays


def _char_device(path):
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))     # as /dev/null


def _symlink_to_device(path):
    _char_device(str(path) + ".dev")
    os.symlink(str(path) + ".dev", path)


KINDS = {"fifo": (_fifo, "a FIFO"), "socket": (_socket, "a socket"),
         "char device": (_char_device, "a character device"),
         "symlink to a device": (_symlink_to_device, "a character device")}


def _snapshot(path):
    st = os.lstat(path)
    return st.st_mode, st.st_ino, st.st_rdev


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tar_output_never_replaces_a_special_file(image, tmp_path, kind):
    if kind != "fifo" and kind != "socket" and os.geteuid() != 0:
        pytest.skip("mknod needs root")
    make, described = KINDS[kind]
    out = tmp_path / "out"
    make(out)
    before = _snapshot(out), _snapshot(os.path.realpath(out))
    proc = occystrap("process", "tar://%s" % image, "tar://%s" % out, check=False)
    assert "Error: Output path exists and is not a regular file: %s (%s)" % (out, described) \
        in proc.stderr
    assert (_snapshot(out), _snapshot(os.path.realpath(out))) == before
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["in.tar", "out"] + (["out.dev"] if kind == "symlink to a device" else []))


def test_tar_output_refuses_a_directory(image, tmp_path):
    (tmp_path / "out").mkdir()
    proc = occystrap("process", "tar://%s" % image, "tar://%s" % (tmp_path / "out"),
                     check=False)
    assert "Error: Output path is a directory: %s" % (tmp_path / "out") in proc.stderr


def test_tar_output_through_a_symlink_replaces_its_target(image, tmp_path):
    real = tmp_path / "sub" / "real.tar"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "link.tar"
    link.symlink_to(real)
    occystrap("process", "tar://%s" % image, "tar://%s" % link, check=True)
    occystrap("process", "tar://%s" % image, "tar://%s" % (tmp_path / "plain.tar"), check=True)
    assert os.readlink(link) == str(real)
    assert real.read_bytes() == (tmp_path / "plain.tar").read_bytes()
    assert sorted(os.listdir(real.parent)) == ["real.tar"]


def test_tar_output_through_a_dangling_symlink_creates_its_target(image, tmp_path):
    link = tmp_path / "link.tar"
    link.symlink_to(tmp_path / "new.tar")
    occystrap("process", "tar://%s" % image, "tar://%s" % link, check=True)
    assert link.is_symlink() and (tmp_path / "new.tar").is_file()


def _hard_link(image, tmp_path):
    os.link(image, tmp_path / "hard.tar")
    return tmp_path / "hard.tar"


def _symlink(image, tmp_path):
    (tmp_path / "soft.tar").symlink_to(image)
    return tmp_path / "soft.tar"


def _other_spelling(image, tmp_path):
    (tmp_path / "sub").mkdir()
    return tmp_path / "sub" / ".." / "in.tar"


@pytest.mark.parametrize("spell", [lambda image, tmp_path: image, _hard_link, _symlink,
                                   _other_spelling], ids=["same", "hard link", "symlink",
                                                          "other path"])
def test_tar_output_over_its_own_input_is_refused(image, tmp_path, spell):
    out = spell(image, tmp_path)
    before = image.read_bytes(), os.stat(image).st_ino
    proc = occystrap("process", "tar://%s" % image, "tar://%s" % out, "-f",
                     "normalize-timestamps", check=False)
    assert "Error: Output %s is the input file %s" % (os.path.realpath(out), image) \
        in proc.stderr
    assert (image.read_bytes(), os.stat(image).st_ino) == before
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]


@pytest.mark.parametrize("scheme", ["oci", "mounts"])
def test_bundle_output_refuses_a_fifo(image, tmp_path, scheme):
    if scheme == "mounts" and os.geteuid() != 0:
        pytest.skip("mounts:// needs root")
    out = tmp_path / "out"
    os.mkfifo(out)
    proc = occystrap("process", "tar://%s" % image, "%s://%s" % (scheme, out), check=False)
    assert "Error: Output path exists and is not an empty directory: %s" % out in proc.stderr
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["in.tar", "out"]


def test_oci_output_through_a_symlink_to_an_empty_directory(image, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "bundle").symlink_to(tmp_path / "real")
    occystrap("process", "tar://%s" % image, "oci://%s" % (tmp_path / "bundle"), check=True)
    assert os.readlink(tmp_path / "bundle") == str(tmp_path / "real")
    assert sorted(os.listdir(tmp_path / "real")) == ["config.json", "container-config.json",
                                                     "rootfs"]


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory on a read-only tmpfs (root bypasses permission bits, not this)."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs",
                                            str(path)], capture_output=True).returncode:
        pytest.skip("needs root and mount")
    yield path
    subprocess.run(["umount", str(path)], check=True)


@pytest.mark.parametrize("where, reason", [("missing/x.jsonl", "No such file or directory"),
                                           ("adir", "Is a directory"),
                                           ("ro/x.jsonl", "Read-only file system")])
@pytest.mark.parametrize("output", ["tar://{tmp}/out.tar", "dir://{tmp}/out"])
def test_unwritable_inspect_file_fails_before_the_output(image, tmp_path, where, reason,
                                                         output, request):
    if where.startswith("ro/"):
        request.getfixturevalue("read_only_dir")
    (tmp_path / "adir").mkdir()
    target = tmp_path / where
    proc = occystrap("process", "tar://%s" % image, output.format(tmp=tmp_path),
                     "-f", "inspect:file=%s" % target, check=False)
    assert "Error: inspect: cannot write %s: %s" % (target, reason) in proc.stderr
    assert not (tmp_path / "out.tar").exists() and not (tmp_path / "out").exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


@pytest.mark.parametrize("which", ["input", "output"])
def test_inspect_file_may_not_be_the_input_or_the_output(image, tmp_path, which):
    out = tmp_path / "out.tar"
    if which == "output":
        out.write_bytes(b"an earlier output")
    (tmp_path / "link").symlink_to(image if which == "input" else out)
    before = sorted(os.listdir(tmp_path)), image.read_bytes()
    proc = occystrap("process", "tar://%s" % image, "tar://%s" % out,
                     "-f", "inspect:file=%s" % (tmp_path / "link"), check=False)
    other = "the input file %s" % image if which == "input" else "the output %s" % out
    assert "Error: inspect file %s is %s" % (tmp_path / "link", other) in proc.stderr
    assert (sorted(os.listdir(tmp_path)), image.read_bytes()) == before
    if which == "output":
        assert out.read_bytes() == b"an earlier output"


def test_inspect_file_may_not_be_a_new_output(image, tmp_path):
    out = tmp_path / "out.tar"
    proc = occystrap("process", "tar://%s" % image, "tar://%s" % out,
                     "-f", "inspect:file=%s" % out, check=False)
    assert "Error: inspect file %s is the output %s" % (out, out) in proc.stderr
    assert not out.exists()


def test_dir_output_refuses_a_fifo(image, tmp_path):
    out = tmp_path / "out"
    os.mkfifo(out)
    proc = occystrap("process", "tar://%s" % image, "dir://%s" % out, check=False)
    assert "Error: Output path exists and is not a directory: %s" % out in proc.stderr
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
