"""Bad input ends as one `Error:` line, exit 1, no traceback and nothing half-written."""
import io
import json
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
     "Error: filter normalize-timestamps: option ts must be an integer from "),
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


# -- untrusted names, JSON and options (issue 8) -------------------------------------------

def with_manifest(path, transform, name="manifest.json"):
    """Rewrite the member name (JSON) of the docker-save tarball at path in place:
    transform gets its parsed value and returns the new bytes."""
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None)
                   for m in tar.getmembers()]
    with tarfile.open(path, "w") as tar:
        for member, data in members:
            if member.name == name:
                data = transform(json.loads(data))
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)


DEEP = b"[" * 100000 + b"]" * 100000


@pytest.mark.parametrize("entry", [
    ("file", "a", b"x", {"pax": {"path": "etc/a\0b"}}),
    ("symlink", "link", "target", {"pax": {"linkpath": "tar\0get"}}),
    ("hardlink", "hard", "x", {"pax": {"linkpath": "x\0y"}}),
])
@pytest.mark.parametrize("scheme", ["dir", "oci"])
def test_nul_in_member_names_on_expand(tmp_path, entry, scheme):
    path = tmp_path / "nul.tar"
    ib.build_image(path, [ib.layer([("file", "x", b"x"), entry])])
    dest = tmp_path / "sub" / "out"
    dest.parent.mkdir()
    uri = "dir://%s?expand=true" % dest if scheme == "dir" else "oci://%s" % dest
    proc = occystrap("process", "tar://%s" % path, uri, check=False)
    assert "has a NUL byte in its name or link target" in proc.stderr
    assert "\0" not in proc.stderr
    assert not dest.exists() and leftovers(tmp_path / "sub") == []


@pytest.mark.parametrize("template", ["tar://%s/o%%00.tar", "dir://%s/o%%00d",
                                      "oci://%s/%%00", "dir://%s/o?expand=%%00"])
def test_nul_in_output_uri(good, tmp_path, template):
    proc = occystrap("process", "tar://%s" % good, template % tmp_path, check=False)
    assert "contains a NUL byte" in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.tar"]


@pytest.mark.parametrize("uri, message", [
    ("registry://[::1/x", "Invalid URI registry://[::1/x: Invalid IPv6 URL"),
    ("registry://a]/x", "Invalid IPv6 URL"),
    ("registry://localhost:99999/x", "port 99999 is not from 1 to 65535"),
    ("registry://localhost:0/x", "port 0 is not from 1 to 65535"),
    ("registry://localhost:5000/x?max_workers=abc",
     "option max_workers must be an integer from 1 to 1024, not 'abc'"),
    ("registry://localhost:5000/x?max_workers=0", "option max_workers must be an integer"),
    ("registry://localhost:5000/x?insecure=maybe",
     "option insecure must be true or false (also yes/no, 1/0), not 'maybe'"),
])
def test_bad_registry_uris(good, uri, message):
    # refused before any connection is tried: there is no registry on these ports
    for args in (["info", uri], ["process", "tar://%s" % good, uri]):
        proc = occystrap(*args, check=False)
        assert message in proc.stderr


@pytest.mark.parametrize("tags", [[1, 2], [["a:b"]], [None], ["a:1", None], "a:b", {"a": "b"}])
def test_non_string_repotags(good, tmp_path, tags):
    def transform(manifest):
        manifest[0]["RepoTags"] = tags
        return json.dumps(manifest).encode()
    with_manifest(good, transform)
    for args in (["info", "tar://%s" % good],
                 ["process", "tar://%s" % good, "tar://%s" % (tmp_path / "o.tar")]):
        proc = occystrap(*args, check=False)
        assert "manifest.json entry 1: RepoTags must be a list of NAME:TAG strings" \
            in proc.stderr
    assert not (tmp_path / "o.tar").exists()


@pytest.mark.parametrize("change, message", [
    (lambda m: m[0].update(Layers=[1]), "entry 1: Layers must be a list of paths"),
    (lambda m: m[0].update(Config=["x"]), "entry 1 lacks Config or Layers"),
    (lambda m: m.append("x"), "lists no image"),
])
def test_malformed_save_manifest(good, change, message):
    def transform(manifest):
        change(manifest)
        return json.dumps(manifest).encode()
    with_manifest(good, transform)
    proc = occystrap("info", "tar://%s" % good, check=False)
    assert "manifest.json %s" % message in proc.stderr


@pytest.mark.parametrize("body, reason", [
    (DEEP, "nested more than 100 levels deep"),
    (b'[{"Config": "x", "Layers": [], "RepoTags": [NaN]}]', "NaN is not a JSON value"),
], ids=["deep", "nan"])
def test_untrusted_manifest_json_in_a_tarball(good, body, reason):
    with_manifest(good, lambda manifest: body)
    proc = occystrap("info", "tar://%s" % good, check=False)
    assert "manifest.json is not valid JSON: %s" % reason in proc.stderr


def test_deeply_nested_json_in_a_directory(good, tmp_path):
    out = tmp_path / "d"
    occystrap("process", "tar://%s" % good, "dir://%s" % out, check=True)
    config = json.loads((out / "manifest.json").read_text())[0]["Config"]
    (out / config).write_bytes(b'{"rootfs": ' + DEEP + b"}")
    proc = occystrap("info", "dir://%s" % out, check=False)
    assert "is not an image config: nested more than 100 levels deep" in proc.stderr
    (out / "catalog.json").write_bytes(DEEP)
    proc = occystrap("info", "dir://%s" % out, check=False)
    assert "catalog.json is not valid JSON: nested more than 100 levels deep" in proc.stderr


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "1e-9", "abc", "2000000"])
def test_bad_rate_limit(value):
    # a registry source, where the limit would apply: 1e-9 used to hang here
    proc = occystrap("--rate-limit", value, "info", "registry://127.0.0.1:1/x:1",
                     check=False, timeout=60)
    assert "Error: Invalid value for '--rate-limit': %r is not a number of requests per " \
           "second from 0.01 to 1000000" % value in proc.stderr
    env = occystrap("info", "registry://127.0.0.1:1/x:1",
                    env={"OCCYSTRAP_RATE_LIMIT": value}, check=False, timeout=60)
    assert "'--rate-limit'" in env.stderr


def test_rate_limit_in_range_is_accepted(good):
    occystrap("--rate-limit", "0.01", "info", "tar://%s" % good, check=True)
    occystrap("--rate-limit", "1000000", "info", "tar://%s" % good, check=True)


@pytest.mark.parametrize("args, option", [
    (["-j", "-1"], "'-j' / '--parallel'"), (["-j", "5000"], "'-j' / '--parallel'"),
    (["-J", "0"], "'-J' / '--image-parallel'"), (["--retries", "101"], "'--retries'"),
    (["--retries", "x"], "'--retries'"),
])
def test_bad_numbers_in_global_options(good, args, option):
    proc = occystrap(*args, "info", "tar://%s" % good, check=False)
    assert "Error: Invalid value for %s" % option in proc.stderr
    assert "Usage:" not in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--compression", "zstd", "--compression-level", "23"], "for zstd must be from 1 to 22"),
    (["--compression", "zstd", "--compression-level", "0"], "for zstd must be from 1 to 22"),
    (["--compression-level", "10"], "for gzip must be from 0 to 9, not 10"),
    (["--compression-level", "-1"], "for gzip must be from 0 to 9, not -1"),
])
def test_bad_compression_level(good, args, message):
    proc = occystrap(*args, "process", "tar://%s" % good, "registry://127.0.0.1:1/x:1",
                     check=False)
    assert message in proc.stderr


@pytest.mark.parametrize("query, message", [
    ("compression=zstd&compression_level=99", "for zstd must be from 1 to 22, not 99"),
    ("compression=brotli", "option compression must be one of gzip, zstd, not 'brotli'"),
    ("compression_level=x", "option compression_level must be an integer, not 'x'"),
])
def test_bad_compression_in_registry_uri(good, query, message):
    proc = occystrap("process", "tar://%s" % good, "registry://127.0.0.1:1/x:1?" + query,
                     check=False)
    assert message in proc.stderr


@pytest.mark.parametrize("uri, message", [
    ("dir://{out}?uniqe_names=true",
     "Unknown option 'uniqe_names' for dir:// output (accepted: expand, unique_names)"),
    ("dir://{out}?expand=maybe",
     "dir:// output: option expand must be true or false (also yes/no, 1/0), not 'maybe'"),
    ("dir://{out}?unique_names=", "option unique_names must be true or false"),
    ("tar://{out}.tar?compression=gzip",
     "Unknown option 'compression' for tar:// output (accepted: none)"),
    ("oci://{out}?expand=true", "Unknown option 'expand' for oci:// output"),
    ("registry://127.0.0.1:1/x:1?arch=arm64",
     "Unknown option 'arch' for registry:// output"),
    ("docker://x:1?sockt=/run/docker.sock", "Unknown option 'sockt' for docker:// output "
                                            "(accepted: socket)"),
])
def test_unknown_or_bad_output_options(good, tmp_path, uri, message):
    out = tmp_path / "out"
    proc = occystrap("process", "tar://%s" % good, uri.format(out=out), check=False)
    assert message in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.tar"]


@pytest.mark.parametrize("uri, message", [
    ("tar://{good}?tag=1", "Unknown option 'tag' for tar:// input (accepted: none)"),
    ("registry://127.0.0.1:1/x:1?compression=zstd",
     "Unknown option 'compression' for registry:// input"),
    ("registry://127.0.0.1:1/x:1?archh=arm64", "(accepted: arch, architecture, ca_file, "
                                                "insecure, max_workers, os, password, platform, "
                                                "username, variant)"),
    ("docker://x:1?socket=/x&x=1", "Unknown option 'x' for docker:// input"),
    ("dockerpush://x:1?tag=1", "Unknown option 'tag' for dockerpush:// input"),
])
def test_unknown_input_options(good, tmp_path, uri, message):
    proc = occystrap("process", uri.format(good=good), "tar://%s" % (tmp_path / "o.tar"),
                     check=False)
    assert message in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["in.tar"]


@pytest.mark.parametrize("spec, message", [
    ("normalize-timestamps:bogus=1",
     "Unknown option 'bogus' for filter normalize-timestamps "
     "(accepted: config, mode, skip, timestamp, ts)"),
    ("normalize-timestamps:timestamp=1.5", "option timestamp must be an integer from "),
    ("normalize-timestamps:ts=%d" % (1 << 63), "option ts must be an integer from "
                                               "-9223372036854775808 to 9223372036854775807"),
    ("exclude:pattern=a,patern=b", "Unknown option 'patern' for filter exclude"),
    ("search:pattern=x,regex=maybe", "filter search: option regex must be true or false"),
    ("search:pattern=x,script-friendly=2", "option script-friendly must be true or false"),
    ("inspect:file=x,mode=a", "Unknown option 'mode' for filter inspect (accepted: file)"),
])
def test_unknown_or_bad_filter_keys(good, tmp_path, spec, message):
    proc = occystrap("process", "tar://%s" % good, "tar://%s" % (tmp_path / "o.tar"),
                     "-f", spec, check=False)
    assert message in proc.stderr
    assert not (tmp_path / "o.tar").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root reaches the kernel's check "
                                                "of security.capability (else EPERM)")
@pytest.mark.parametrize("scheme", ["dir", "oci"])
def test_malformed_capability_is_skipped_with_a_warning(tmp_path, scheme):
    path = tmp_path / "cap.tar"
    ib.build_image(path, [ib.layer([("file", "bin/x", b"data",
                                     {"xattrs": {"security.capability": b"\x01\x02"}})])])
    dest = tmp_path / "out"
    uri = "dir://%s?expand=true" % dest if scheme == "dir" else "oci://%s" % dest
    proc = occystrap("process", "tar://%s" % path, uri, check=True)
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert "bin/x: xattr security.capability skipped: Invalid argument" in warnings[0]
    root = dest / "manifest" if scheme == "dir" else dest / "rootfs"
    assert (root / "bin" / "x").read_bytes() == b"data"
    assert "security.capability" not in os.listxattr(root / "bin" / "x")


@pytest.mark.parametrize("bad", [{"mediaType": 5}, {"size": "1"}, {"digest": "sha256:zz"}])
def test_malformed_oci_layout_descriptors_fall_back_to_sniffing(tmp_path, bad):
    path = tmp_path / "oci.tar"
    info = ib.build_image(path, ib.sample_layers(), layout="oci", compression="gzip")
    with tarfile.open(path) as tar:
        index = json.loads(tar.extractfile("index.json").read())
    manifest_blob = "blobs/" + index["manifests"][0]["digest"].replace(":", "/")

    def spoil(manifest):
        manifest["layers"][0].update(bad)
        return json.dumps(manifest).encode()
    with_manifest(path, spoil, name=manifest_blob)
    out = tmp_path / "o.tar"
    occystrap("process", "tar://%s" % path, "tar://%s" % out, check=True)
    with tarfile.open(out) as tar:
        written = json.loads(tar.extractfile("manifest.json").read())[0]["Layers"]
    assert written == ["%s/layer.tar" % d.split(":")[1] for d in info["diff_ids"]]
