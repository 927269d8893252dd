"""Bad input ends as one `Error:` line, exit 1, no traceback and nothing half-written."""
import os
import tarfile

import pytest

from tests import imagebuilder as ib
from tests.cli import occystrap


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "in.tar"
    ib.build_image(path, ib.sample_layers())
    return path


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


@pytest.mark.parametrize("args, message", [
    (["process", "tar:///nonexistent/x.tar", "tar:///tmp/y.tar"],
     "Error: No such file: /nonexistent/x.tar"),
    (["process", "bogus://x", "tar:///tmp/y.tar"], "Error: Unknown input scheme: bogus"),
    (["process", "nocolon", "tar:///tmp/y.tar"], "Error: Missing scheme in URI: nocolon"),
    (["process", "tar://", "tar:///tmp/y.tar"], "Error: tar:// URI requires a path"),
    (["info", "tar:///nonexistent.tar"], "Error: No such file: /nonexistent.tar"),
    (["search", "tar:///nonexistent.tar", "x"], "Error: No such file: /nonexistent.tar"),
])
def test_bad_uris(args, message):
    proc = occystrap(*args, check=False)
    assert message in proc.stderr


@pytest.mark.parametrize("spec, message", [
    ("bogus", "Error: Unknown filter: bogus"),
    ("exclude:nope", "Error: Invalid filter option (missing =): nope"),
    ("exclude", "Error: exclude filter requires pattern option"),
    ("search", "Error: search filter requires pattern option"),
    ("inspect", "Error: inspect filter requires file option"),
    ("normalize-timestamps:ts=abc",
     "Error: filter normalize-timestamps: option ts must be an integer, not 'abc'"),
])
def test_bad_filters(good, tmp_path, spec, message):
    proc = occystrap("process", "tar://%s" % good, "tar://%s" % (tmp_path / "o.tar"),
                     "-f", spec, check=False)
    assert message in proc.stderr
    assert not (tmp_path / "o.tar").exists()


def test_unknown_output_scheme(good):
    proc = occystrap("process", "tar://%s" % good, "nope://x", check=False)
    assert "Error: Unknown output scheme: nope" in proc.stderr


def test_not_a_tarball(tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    proc = occystrap("process", "tar://%s" % junk, "tar://%s" % (tmp_path / "o.tar"), check=False)
    assert "is not a valid tarball" in proc.stderr


def _cut_points(path):
    """Offsets in the middle of every member's data and of every header."""
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    return [m.offset_data + m.size // 2 for m in members if m.size > 1] + \
        [m.offset + 100 for m in members]


@pytest.mark.parametrize("which", range(8))
def test_truncated_tarball_leaves_nothing(good, tmp_path, which):
    points = _cut_points(good)
    data = good.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:points[which * len(points) // 8]])
    out = tmp_path / "o.tar"
    occystrap("process", "tar://%s" % cut, "tar://%s" % out, check=False)
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_corrupt_layer_content(tmp_path):
    layers = ib.sample_layers()
    path = tmp_path / "in.tar"
    info = ib.build_image(path, layers)
    data = bytearray(path.read_bytes())
    needle = b"print('hello')"
    at = data.index(needle)
    data[at:at + len(needle)] = b"print('HELLO')"
    path.write_bytes(bytes(data))
    out = tmp_path / "out"
    proc = occystrap("process", "tar://%s" % path, "dir://%s" % out, check=False)
    assert "content hashes to" in proc.stderr and info["diff_ids"][1] in proc.stderr
    assert not out.exists()


def test_layer_that_is_not_a_tar(tmp_path):
    path = tmp_path / "in.tar"
    ib.build_image(path, [ib.sample_layers()[0], os.urandom(3000)])
    out = tmp_path / "o.tar"
    proc = occystrap("process", "tar://%s" % path, "tar://%s" % out, "-f",
                     "normalize-timestamps", check=False)
    assert "layer 1" in proc.stderr
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/../../escape"])
@pytest.mark.parametrize("scheme", ["dir", "oci"])
def test_unsafe_paths_on_expand(tmp_path, name, scheme):
    evil = ib.layer([("file", name, b"pwned")])
    path = tmp_path / "evil.tar"
    ib.build_image(path, [evil])
    dest = tmp_path / "sub" / "out"
    dest.parent.mkdir()
    uri = "dir://%s?expand=true" % dest if scheme == "dir" else "oci://%s" % dest
    proc = occystrap("process", "tar://%s" % path, uri, check=False)
    assert "Error: " in proc.stderr
    assert not dest.exists()
    assert not (tmp_path / "escape").exists() and not (tmp_path / "sub" / "escape").exists()
    assert leftovers(tmp_path / "sub") == []


def test_symlink_escape_on_expand(tmp_path):
    evil = ib.layer([("symlink", "link", "../../../../outside"),
                     ("file", "link/pwned", b"x")])
    path = tmp_path / "evil.tar"
    ib.build_image(path, [evil])
    proc = occystrap("process", "tar://%s" % path, "oci://%s" % (tmp_path / "b"), check=False)
    assert "escapes" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_missing_output_directory(good, tmp_path):
    proc = occystrap("process", "tar://%s" % good, "tar://%s" % (tmp_path / "no" / "o.tar"),
                     check=False)
    assert "Error: Output directory does not exist" in proc.stderr


def test_failed_expand_leaves_an_existing_directory_intact(good, tmp_path):
    out = tmp_path / "shared"
    occystrap("process", "tar://%s" % good, "dir://%s?expand=true" % out, check=True)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    evil = tmp_path / "evil.tar"
    ib.build_image(evil, [ib.layer([("file", "../escape", b"x")])], repotag="example.com/e:1")
    occystrap("process", "tar://%s" % evil, "dir://%s?expand=true" % out, check=False)
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
