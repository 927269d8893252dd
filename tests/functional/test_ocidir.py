"""ocidir:// and oci-archive:// beyond what test_multiplatform.py covers: archives both
ways as skopeo reads and writes them, layouts buildah pushed, rewritten images, the
inputs refused with one Error: line, and outputs a failed copy leaves as they were.

skopeo and buildah are the judges of what occystrap writes.
"""
import json
import os
import shutil

import pytest

from tests import multiarch as ma
from tests import peers
from tests.cli import occystrap
from tests.multiarch import multiarch_fixture  # noqa: F401  (fixture `multiarch`)

pytestmark = pytest.mark.functional

HELLO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "examples", "hello.tar")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"


@pytest.fixture(autouse=True)
def need_skopeo():
    if not peers.have("skopeo"):
        pytest.skip("skopeo is not installed (apt-get install it; see .ci/run)")


def run(*args, check=True):
    return occystrap(*args, check=check, timeout=300)


def raw(ref):
    return ma.skopeo_raw(ref)


def index_of(layout):
    with open(os.path.join(layout, "index.json")) as f:
        return json.load(f)


def blob(layout, digest):
    return os.path.join(layout, "blobs", "sha256", digest.split(":")[1])


def manifest_of(layout, tag):
    entry = [e for e in index_of(layout)["manifests"]
             if e["annotations"][REF_NAME] == tag][0]
    with open(blob(layout, entry["digest"])) as f:
        return json.load(f)


@pytest.fixture
def layout(tmp_path):
    """hello.tar written as ocidir://TMP/layout:t1 (a rewritten image)."""
    path = tmp_path / "layout"
    run("process", "tar://" + HELLO, "ocidir://%s:t1" % path)
    return str(path)


def broken_copy(layout, tmp_path):
    """A copy of the layout to spoil."""
    copy = str(tmp_path / "broken")
    shutil.copytree(layout, copy)
    return copy


def assert_one_error(proc, *needles):
    line = [x for x in proc.stderr.splitlines() if x.startswith("Error: ")][0]
    for needle in needles:
        assert needle in line, proc.stderr


# --- tar:// -> ocidir:// -------------------------------------------------------------------

def test_tar_to_ocidir_writes_an_oci_manifest(layout, tmp_path):
    index = index_of(layout)
    assert index["mediaType"] == OCI_INDEX
    assert [e["annotations"][REF_NAME] for e in index["manifests"]] == ["t1"]
    assert index["manifests"][0]["mediaType"] == OCI_MANIFEST
    manifest = json.loads(raw("oci:%s:t1" % layout))
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert {d["mediaType"] for d in manifest["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+gzip"}
    assert peers.skopeo_inspect("oci:%s:t1" % layout)["Layers"]
    peers.skopeo("copy", "oci:%s:t1" % layout, "oci:%s:x" % (tmp_path / "check"))
    run("check", "ocidir://%s:t1" % layout)
    assert not [n for n in os.listdir(os.path.join(layout, "blobs", "sha256"))
                if n.startswith(".")]


def test_ocidir_to_tar_and_back_keeps_the_layers(layout, tmp_path):
    out = tmp_path / "back.tar"
    run("process", "ocidir://%s:t1" % layout, "tar://%s" % out)
    run("check", "tar://%s" % out)
    run("process", "tar://%s" % out, "ocidir://%s:t2" % layout)
    assert manifest_of(layout, "t1")["layers"] == manifest_of(layout, "t2")["layers"]


def test_a_new_tag_replaces_only_its_own_entry(layout):
    before = index_of(layout)["manifests"][0]
    run("process", "-f", "normalize-timestamps", "tar://" + HELLO, "ocidir://%s:t2" % layout)
    run("process", "-f", "normalize-timestamps:ts=5", "tar://" + HELLO,
        "ocidir://%s:t1" % layout)
    entries = index_of(layout)["manifests"]
    assert [e["annotations"][REF_NAME] for e in entries] == ["t1", "t2"]
    assert entries[0]["digest"] != before["digest"]
    for tag in ("t1", "t2"):
        run("check", "ocidir://%s:%s" % (layout, tag))


def test_untagged_source_of_one_image_is_read_and_default_tag_is_latest(layout, tmp_path):
    run("process", "ocidir://%s" % layout, "ocidir://%s" % (tmp_path / "out"))
    assert [e["annotations"][REF_NAME]
            for e in index_of(tmp_path / "out")["manifests"]] == ["latest"]
    assert raw("oci:%s:latest" % (tmp_path / "out")) == raw("oci:%s:t1" % layout)


# --- oci-archive:// ------------------------------------------------------------------------

def test_oci_archive_sink_is_read_by_skopeo(layout, tmp_path):
    archive = tmp_path / "image.tar"
    run("process", "ocidir://%s:t1" % layout, "oci-archive://%s:v1" % archive)
    assert raw("oci-archive:%s:v1" % archive) == raw("oci:%s:t1" % layout)
    peers.skopeo("copy", "--all", "oci-archive:%s:v1" % archive,
                 "oci:%s:x" % (tmp_path / "check"))
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".occystrap")]
    run("check", "oci-archive://%s:v1" % archive)


def test_oci_archive_source_reads_what_skopeo_writes(layout, tmp_path):
    archive = tmp_path / "skopeo.tar"
    peers.skopeo("copy", "oci:%s:t1" % layout, "oci-archive:%s:sk" % archive)
    out = tmp_path / "out"
    run("process", "oci-archive://%s:sk" % archive, "ocidir://%s:x" % out)
    assert raw("oci:%s:x" % out) == raw("oci-archive:%s:sk" % archive)
    run("process", "oci-archive://%s" % archive, "tar://%s" % (tmp_path / "image.tar"))
    run("check", "tar://%s" % (tmp_path / "image.tar"))


def test_oci_archive_holds_a_whole_index(multiarch, tmp_path):
    archive = tmp_path / "index.tar"
    run("--insecure", "--platform", "all", "process", multiarch.uri("oci"),
        "oci-archive://%s:all" % archive)
    assert ma.sha256(raw("oci-archive:%s:all" % archive)) == \
        ma.sha256(raw(multiarch.docker_ref("oci")))
    peers.skopeo("copy", "--all", "oci-archive:%s:all" % archive,
                 "oci:%s:x" % (tmp_path / "check"))


def test_failed_copy_leaves_an_existing_archive_as_it_was(layout, tmp_path):
    archive = tmp_path / "image.tar"
    run("process", "ocidir://%s:t1" % layout, "oci-archive://%s:v1" % archive)
    before = archive.read_bytes()
    broken = broken_copy(layout, tmp_path)
    layer = manifest_of(broken, "t1")["layers"][0]["digest"]
    with open(blob(broken, layer), "r+b") as f:
        f.write(b"\0" * 8)
    run("process", "ocidir://%s:t1" % broken, "oci-archive://%s:v1" % archive, check=False)
    assert archive.read_bytes() == before
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".occystrap")]


# --- layouts other tools wrote -----------------------------------------------------------

def test_ocidir_source_reads_a_buildah_layout(tmp_path):
    if not peers.have("buildah"):
        pytest.skip("buildah is not installed")
    work = str(tmp_path / "buildah")
    os.makedirs(work)
    b = ma.Buildah(work)
    try:
        with open(os.path.join(work, "hello.txt"), "w") as f:
            f.write("hello from buildah\n")
        container = b("from", "scratch")
        b("copy", container, os.path.join(work, "hello.txt"), "/hello.txt")
        b("config", "--os", "linux", "--arch", "amd64", container)
        b("commit", "-q", container, "localhost/ocidir-test:1")
        pushed = tmp_path / "pushed"
        b("push", "-q", "localhost/ocidir-test:1", "oci:%s:bt" % pushed)
    finally:
        peers.unmount_under(work)
    out = tmp_path / "image.tar"
    run("process", "ocidir://%s:bt" % pushed, "tar://%s" % out)
    run("check", "tar://%s" % out)
    assert peers.skopeo_inspect("docker-archive:%s" % out)["Architecture"] == "amd64"
    copy = tmp_path / "copy"
    run("process", "ocidir://%s:bt" % pushed, "ocidir://%s:bt" % copy)
    assert raw("oci:%s:bt" % copy) == raw("oci:%s:bt" % pushed)
    run("check", "ocidir://%s:bt" % copy)


# --- inputs refused ------------------------------------------------------------------------

def test_missing_tag_names_the_tags_present(layout, tmp_path):
    run("process", "tar://" + HELLO, "ocidir://%s:t2" % layout)
    proc = run("process", "ocidir://%s:nope" % layout, "tar://%s" % (tmp_path / "o.tar"),
               check=False)
    assert_one_error(proc, "nope", "t1", "t2")
    proc = run("process", "ocidir://%s" % layout, "tar://%s" % (tmp_path / "o.tar"),
               check=False)
    assert_one_error(proc, "name a tag", "t1, t2")


def test_missing_blob_is_one_error(layout, tmp_path):
    broken = broken_copy(layout, tmp_path)
    layer = manifest_of(broken, "t1")["layers"][1]["digest"]
    os.unlink(blob(broken, layer))
    proc = run("process", "ocidir://%s:t1" % broken, "tar://%s" % (tmp_path / "o.tar"),
               check=False)
    assert_one_error(proc, layer, "missing")
    assert not os.path.exists(tmp_path / "o.tar")


def test_blob_with_wrong_content_is_one_error(layout, tmp_path):
    broken = broken_copy(layout, tmp_path)
    layer = manifest_of(broken, "t1")["layers"][0]["digest"]
    with open(blob(broken, layer), "r+b") as f:
        f.seek(20)
        f.write(b"\xff\xff\xff\xff")
    for dest in ("tar://%s" % (tmp_path / "o.tar"), "ocidir://%s:x" % (tmp_path / "o")):
        proc = run("process", "ocidir://%s:t1" % broken, dest, check=False)
        assert_one_error(proc, layer[7:19])


def test_index_json_that_is_not_json_is_one_error(layout, tmp_path):
    broken = broken_copy(layout, tmp_path)
    with open(os.path.join(broken, "index.json"), "w") as f:
        f.write("{not json")
    proc = run("process", "ocidir://%s:t1" % broken, "tar://%s" % (tmp_path / "o.tar"),
               check=False)
    assert_one_error(proc, "index.json is not valid JSON")
    proc = run("process", "tar://" + HELLO, "ocidir://%s:t2" % broken, check=False)
    assert_one_error(proc, "index.json is not valid JSON")


@pytest.mark.parametrize("where", ["index", "layer"])
def test_digest_leading_out_of_the_layout_is_refused(layout, tmp_path, where):
    broken = broken_copy(layout, tmp_path)
    evil = "sha256:../../../../etc/passwd"
    index = index_of(broken)
    if where == "index":
        index["manifests"][0]["digest"] = evil
    else:
        manifest = manifest_of(broken, "t1")
        manifest["layers"][0]["digest"] = evil
        data = json.dumps(manifest).encode()
        digest = ma.sha256(data)
        with open(blob(broken, digest), "wb") as f:
            f.write(data)
        index["manifests"][0].update(digest=digest, size=len(data))
    with open(os.path.join(broken, "index.json"), "w") as f:
        json.dump(index, f)
    proc = run("process", "ocidir://%s:t1" % broken, "tar://%s" % (tmp_path / "o.tar"),
               check=False)
    assert_one_error(proc, "bad descriptor digest")


def test_symlink_leading_out_of_the_layout_is_refused(layout, tmp_path):
    broken = broken_copy(layout, tmp_path)
    layer = manifest_of(broken, "t1")["layers"][0]["digest"]
    outside = tmp_path / "outside"
    shutil.copy(blob(broken, layer), outside)
    os.unlink(blob(broken, layer))
    os.symlink(outside, blob(broken, layer))
    proc = run("process", "ocidir://%s:t1" % broken, "tar://%s" % (tmp_path / "o.tar"),
               check=False)
    assert_one_error(proc, "outside the layout")


def test_not_a_layout_is_one_error(tmp_path):
    (tmp_path / "plain").mkdir()
    proc = run("process", "ocidir://%s:x" % (tmp_path / "plain"),
               "tar://%s" % (tmp_path / "o.tar"), check=False)
    assert_one_error(proc, "not an OCI image layout")
    proc = run("process", "oci-archive://%s:x" % HELLO, "tar://%s" % (tmp_path / "o.tar"),
               check=False)
    assert_one_error(proc, "not an OCI image layout")


# --- outputs -------------------------------------------------------------------------------

def test_output_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    proc = run("process", "tar://" + HELLO, "ocidir://%s:x" % target, check=False)
    assert_one_error(proc, "not an OCI layout directory")
    assert target.read_text() == "keep me"
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "other").write_text("keep me")
    proc = run("process", "tar://" + HELLO, "ocidir://%s:x" % (tmp_path / "dir"), check=False)
    assert_one_error(proc, "not an OCI layout")
    assert os.listdir(tmp_path / "dir") == ["other"]
    proc = run("process", "tar://" + HELLO, "oci-archive://%s:x" % (tmp_path / "dir"),
               check=False)
    assert_one_error(proc, "is a directory")


def test_failed_copy_leaves_index_json_as_it_was(layout, tmp_path):
    other = tmp_path / "other"
    run("process", "-f", "normalize-timestamps", "tar://" + HELLO, "ocidir://%s:t1" % other)
    layer = manifest_of(str(other), "t1")["layers"][2]["digest"]
    with open(blob(str(other), layer), "r+b") as f:
        f.seek(30)
        f.write(b"\x00\x01\x02\x03")
    index = os.path.join(layout, "index.json")
    with open(index, "rb") as f:
        before = f.read()
    for tag in ("t1", "new"):
        proc = run("process", "ocidir://%s:t1" % other, "ocidir://%s:%s" % (layout, tag),
                   check=False)
        assert_one_error(proc, layer[7:19])
        with open(index, "rb") as f:
            assert f.read() == before
    assert not [n for n in os.listdir(os.path.join(layout, "blobs", "sha256"))
                if n.startswith(".")]
    run("check", "ocidir://%s:t1" % layout)


def test_platform_query_picks_one_image_of_a_layout_index(multiarch, tmp_path):
    out = tmp_path / "arm64.tar"
    run("process", "ocidir://%s:%s?platform=linux/arm64" % (multiarch.layout,
                                                           multiarch.layout_tag),
        "tar://%s" % out)
    assert peers.skopeo_inspect("docker-archive:%s" % out)["Architecture"] == "arm64"


def test_compression_option_rewrites_the_layers(layout, tmp_path):
    out = tmp_path / "zstd"
    run("process", "ocidir://%s:t1" % layout, "ocidir://%s:z?compression=zstd" % out)
    manifest = json.loads(raw("oci:%s:z" % out))
    assert {d["mediaType"] for d in manifest["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"}
    peers.skopeo("copy", "oci:%s:z" % out, "oci:%s:x" % (tmp_path / "check"))
    run("--verify-full", "process", "ocidir://%s:z" % out, "ocidir://%s:gz" % out)
    run("check", "ocidir://%s:gz" % out)


def test_a_layout_can_be_retagged_in_place(layout):
    blobs = sorted(os.listdir(os.path.join(layout, "blobs", "sha256")))
    run("process", "ocidir://%s:t1" % layout, "ocidir://%s:again" % layout)
    assert sorted(os.listdir(os.path.join(layout, "blobs", "sha256"))) == blobs
    assert raw("oci:%s:again" % layout) == raw("oci:%s:t1" % layout)


def test_a_rewritten_docker_list_becomes_an_oci_index(multiarch, tmp_path):
    out = tmp_path / "layout"
    run("--insecure", "--platform", "all", "process", "-f", "normalize-timestamps",
        multiarch.uri("v2s2"), "ocidir://%s:n" % out)
    assert index_of(out)["manifests"][0]["mediaType"] == OCI_INDEX
    index = json.loads(raw("oci:%s:n" % out))
    assert index["mediaType"] == OCI_INDEX
    assert {e["mediaType"] for e in index["manifests"]} == {OCI_MANIFEST}
    assert [e["platform"]["architecture"] for e in index["manifests"]] == ["amd64", "arm64"]
    peers.skopeo("copy", "--all", "oci:%s:n" % out, "oci:%s:x" % (tmp_path / "check"))
