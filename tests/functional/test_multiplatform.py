"""Multi-platform images: --platform all | OS/ARCH[/VARIANT][,...] (also
OCCYSTRAP_PLATFORM and ?platform= on source URIs), index-preserving copies and
rewrites, single-platform selection, ocidir:// layouts, info and check on indexes.

The source images are real: buildah builds and pushes them (tests/multiarch.py);
skopeo, dockerd and the registry's own API judge what occystrap wrote.
"""
import gzip
import json
import os
import subprocess

import pytest

from tests import multiarch as ma
from tests.cli import occystrap
from tests.multiarch import multiarch_fixture  # noqa: F401  (fixture `multiarch`)

pytestmark = pytest.mark.functional

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REF_NAME = "org.opencontainers.image.ref.name"

KINDS = {"oci": (OCI_INDEX, OCI_MANIFEST), "v2s2": (DOCKER_LIST, DOCKER_MANIFEST)}


# --- helpers -----------------------------------------------------------------------------

def run(*args, env=None, check=True):
    return occystrap("--insecure", *args, env=env, check=check, timeout=300)


def dest(mp, name):
    """(occystrap URI, docker:// ref, repo, tag) of a fresh destination in the registry."""
    repo = "mpout/" + name
    return ("registry://%s/%s:1" % (mp.url, repo), "docker://%s/%s:1" % (mp.url, repo),
            repo, "1")


def raw_digest(ref):
    return ma.sha256(ma.skopeo_raw(ref))


def platforms(index):
    return [entry["platform"] for entry in index["manifests"]]


def children(mp, repo, index):
    return [ma.get_manifest(mp.url, repo, entry["digest"]) for entry in index["manifests"]]


def skopeo_copy_all(src, tmp_path, name="check"):
    """skopeo copy --all SRC oci:DIR: fetches every child and checks every blob digest."""
    args = ["copy", "--all"]
    if src.startswith("docker://"):
        args.append("--src-tls-verify=false")
    ma.peers.skopeo(*args, src, "oci:%s:x" % (tmp_path / name))


def assert_diff_ids_match(mp, repo, manifest):
    """The config's rootfs.diff_ids are the sha256 of each layer's uncompressed tar."""
    config = json.loads(ma.get_blob(mp.url, repo, manifest["config"]["digest"]))
    actual = [ma.sha256(gzip.decompress(ma.get_blob(mp.url, repo, layer["digest"])))
              for layer in manifest["layers"]]
    assert config["rootfs"]["diff_ids"] == actual


def layout_index(path):
    with open(os.path.join(path, "index.json")) as f:
        return json.load(f)


def layout_blobs(path):
    return set(os.listdir(os.path.join(path, "blobs", "sha256")))


def assert_one_error(proc, *needles):
    """check=False already asserted exit 1 and one Error: line; it names every needle."""
    line = [x for x in proc.stderr.splitlines() if x.startswith("Error: ")][0]
    for needle in needles:
        assert needle in line, proc.stderr


# --- --platform all: byte-exact index copies ---------------------------------------------

@pytest.mark.parametrize("kind", ["oci", "v2s2"])
def test_platform_all_copies_the_index_byte_exact(multiarch, tmp_path, kind):
    uri, ref, repo, _tag = dest(multiarch, "exact-" + kind)
    run("--platform", "all", "process", multiarch.uri(kind), uri)
    assert raw_digest(ref) == raw_digest(multiarch.docker_ref(kind))
    ctype, _body, index = ma.get_manifest(multiarch.url, repo, "1")
    assert ctype == KINDS[kind][0] == index["mediaType"]
    skopeo_copy_all(ref, tmp_path)


def test_platform_from_environment(multiarch):
    uri, ref, _repo, _tag = dest(multiarch, "env-all")
    run("process", multiarch.uri("oci"), uri, env={"OCCYSTRAP_PLATFORM": "all"})
    assert raw_digest(ref) == raw_digest(multiarch.docker_ref("oci"))


def test_platform_query_on_source_uri(multiarch):
    uri, ref, _repo, _tag = dest(multiarch, "query-all")
    run("process", multiarch.uri("oci") + "?platform=all", uri)
    assert raw_digest(ref) == raw_digest(multiarch.docker_ref("oci"))


def test_platform_option_overrides_environment(multiarch):
    uri, ref, _repo, _tag = dest(multiarch, "env-override")
    run("--platform", "linux/arm64", "process", multiarch.uri("oci"), uri,
        env={"OCCYSTRAP_PLATFORM": "all"})
    assert raw_digest(ref) == multiarch.child("oci", "arm64")["digest"]


# --- one platform out of an index ---------------------------------------------------------

@pytest.mark.parametrize("kind", ["oci", "v2s2"])
@pytest.mark.parametrize("platform", ["linux/arm64", None])
def test_single_platform_is_the_child_manifest_unchanged(multiarch, kind, platform):
    arch = "arm64" if platform else "amd64"
    uri, ref, repo, _tag = dest(multiarch, "single-%s-%s" % (kind, arch))
    opts = ["--platform", platform] if platform else []
    run(*opts, "process", multiarch.uri(kind), uri)
    assert raw_digest(ref) == multiarch.child(kind, arch)["digest"]
    ctype, _body, manifest = ma.get_manifest(multiarch.url, repo, "1")
    assert ctype == KINDS[kind][1] == manifest["mediaType"]


def test_architecture_option_still_picks_one_platform(multiarch):
    uri, ref, _repo, _tag = dest(multiarch, "arch-option")
    run("--architecture", "arm64", "process", multiarch.uri("oci"), uri)
    assert raw_digest(ref) == multiarch.child("oci", "arm64")["digest"]


# --- --platform all with a filter: every child rewritten, the index rebuilt -----------------

@pytest.mark.parametrize("kind", ["oci", "v2s2"])
def test_platform_all_normalize_rewrites_every_child(multiarch, tmp_path, kind):
    index_type, child_type = KINDS[kind]
    uri, ref, repo, _tag = dest(multiarch, "normalized-" + kind)
    run("--platform", "all", "process", multiarch.uri(kind), uri, "-f", "normalize-timestamps")
    _ctype, _body, src_index = multiarch.manifest(kind)
    ctype, _body, index = ma.get_manifest(multiarch.url, repo, "1")
    assert ctype == index_type == index["mediaType"]
    assert platforms(index) == platforms(src_index)
    assert [e["mediaType"] for e in index["manifests"]] == [child_type, child_type]
    out = [m for _c, _b, m in children(multiarch, repo, index)]
    src = [m for _c, _b, m in children(multiarch, multiarch.repo, src_index)]
    for new, old in zip(out, src):
        assert new["mediaType"] == child_type
        assert len(new["layers"]) == len(old["layers"])
        assert not {x["digest"] for x in new["layers"]} & {x["digest"] for x in old["layers"]}
        assert_diff_ids_match(multiarch, repo, new)
    # the shared layer was rewritten once: the same new blob in both children
    assert out[0]["layers"][0]["digest"] == out[1]["layers"][0]["digest"]
    assert out[0]["layers"][1]["digest"] != out[1]["layers"][1]["digest"]
    skopeo_copy_all(ref, tmp_path)


# --- subsets and absent platforms ----------------------------------------------------------

def test_platform_list_keeps_only_those_children(multiarch):
    uri, ref, repo, _tag = dest(multiarch, "subset")
    run("--platform", "linux/arm64,linux/amd64", "process", multiarch.uri("three"), uri)
    ctype, _body, index = ma.get_manifest(multiarch.url, repo, "1")
    assert ctype == OCI_INDEX
    # source order, not the order asked for; the arm/v7 child is gone
    assert [(p["os"], p["architecture"]) for p in platforms(index)] == \
        [("linux", "amd64"), ("linux", "arm64")]
    assert [e["digest"] for e in index["manifests"]] == \
        [multiarch.child("three", "amd64")["digest"], multiarch.child("three", "arm64")["digest"]]


def test_platform_list_with_variant(multiarch):
    uri, ref, repo, _tag = dest(multiarch, "subset-variant")
    run("--platform", "linux/arm/v7,linux/amd64", "process", multiarch.uri("three"), uri)
    _ctype, _body, index = ma.get_manifest(multiarch.url, repo, "1")
    assert [p.get("variant", "") for p in platforms(index)] == ["", "v7"]
    assert [p["architecture"] for p in platforms(index)] == ["amd64", "arm"]


def test_absent_platform_is_one_error_naming_the_available_ones(multiarch):
    uri, ref, _repo, _tag = dest(multiarch, "absent")
    proc = run("--platform", "linux/s390x", "process", multiarch.uri("oci"), uri, check=False)
    assert_one_error(proc, "linux/amd64", "linux/arm64")
    assert ma.peers.skopeo("inspect", "--raw", "--tls-verify=false", ref,
                           check=False).returncode != 0


@pytest.mark.parametrize("sink", ["tar", "dir"])
def test_single_image_sinks_refuse_a_multi_platform_request(multiarch, tmp_path, sink):
    out = tmp_path / ("out.tar" if sink == "tar" else "outdir")
    proc = run("--platform", "all", "process", multiarch.uri("oci"),
               "%s://%s" % (sink, out), check=False)
    assert_one_error(proc)
    assert not out.exists()


# --- ocidir:// sink and source -------------------------------------------------------------

def test_ocidir_sink_writes_a_layout_with_the_index(multiarch, tmp_path):
    layout = tmp_path / "layout"
    run("--platform", "all", "process", multiarch.uri("oci"), "ocidir://%s:v1" % layout)
    assert json.loads((layout / "oci-layout").read_text())["imageLayoutVersion"] == "1.0.0"
    entries = layout_index(layout)["manifests"]
    assert [e["annotations"][REF_NAME] for e in entries] == ["v1"]
    assert entries[0]["digest"] == raw_digest(multiarch.docker_ref("oci"))
    assert raw_digest("oci:%s:v1" % layout) == raw_digest(multiarch.docker_ref("oci"))
    child = multiarch.child("oci", "arm64")["digest"]
    assert child.split(":")[1] in layout_blobs(layout)
    skopeo_copy_all("oci:%s:v1" % layout, tmp_path)


def test_two_tags_in_one_layout_share_blobs(multiarch, tmp_path):
    layout = tmp_path / "layout"
    run("--platform", "all", "process", multiarch.uri("oci"), "ocidir://%s:a" % layout)
    first = layout_blobs(layout)
    run("--platform", "all", "process", multiarch.uri("three"), "ocidir://%s:b" % layout)
    names = sorted(e["annotations"][REF_NAME] for e in layout_index(layout)["manifests"])
    assert names == ["a", "b"]
    # REPO:three holds the same amd64 and arm64 children as REPO:oci: the only new
    # files are its index and the arm/v7 manifest, config and own layer
    assert len(layout_blobs(layout) - first) == 4
    assert raw_digest("oci:%s:a" % layout) == raw_digest(multiarch.docker_ref("oci"))
    assert raw_digest("oci:%s:b" % layout) == raw_digest(multiarch.docker_ref("three"))


def test_ocidir_to_registry_round_trip_is_byte_exact(multiarch, tmp_path):
    layout = tmp_path / "layout"
    run("--platform", "all", "process", multiarch.uri("oci"), "ocidir://%s:v1" % layout)
    uri, ref, _repo, _tag = dest(multiarch, "from-layout")
    run("--platform", "all", "process", "ocidir://%s:v1" % layout, uri)
    assert raw_digest(ref) == raw_digest(multiarch.docker_ref("oci"))


def test_ocidir_source_reads_a_skopeo_layout(multiarch, tmp_path):
    src = "ocidir://%s:%s" % (multiarch.layout, multiarch.layout_tag)
    uri, ref, _repo, _tag = dest(multiarch, "from-skopeo-layout")
    run("--platform", "all", "process", src, uri)
    assert raw_digest(ref) == raw_digest("oci:%s:%s" % (multiarch.layout, multiarch.layout_tag))
    out = tmp_path / "arm64.tar"
    run("--platform", "linux/arm64", "process", src, "tar://%s" % out)
    arm = ma.peers.skopeo_inspect("docker-archive:%s" % out)
    assert arm["Architecture"] == "arm64"
    run("check", "tar://%s" % out)


# --- info and check on an index ------------------------------------------------------------

def test_info_lists_every_platform(multiarch):
    text = run("info", multiarch.uri("oci")).stdout
    assert "linux/amd64" in text and "linux/arm64" in text
    data = json.loads(run("-O", "json", "info", multiarch.uri("oci")).stdout)
    assert [(p["os"], p["architecture"]) for p in data["platforms"]] == \
        [("linux", "amd64"), ("linux", "arm64")]


def test_check_platform_all_checks_every_child(multiarch):
    proc = run("--platform", "all", "check", multiarch.uri("oci"))
    output = proc.stdout + proc.stderr
    assert "linux/amd64" in output and "linux/arm64" in output
    assert "Check complete" in proc.stdout and "0 error(s)" in proc.stdout


# --- a real client pulls what we wrote -------------------------------------------------------

@pytest.fixture
def dockerd_or_skip(request):
    try:
        return request.getfixturevalue("dockerd")
    except RuntimeError as e:
        pytest.skip("dockerd could not start: %s" % str(e).splitlines()[0])


def test_docker_pulls_arm64_from_the_copied_index(multiarch, dockerd_or_skip):
    uri, ref, repo, _tag = dest(multiarch, "for-docker")
    run("--platform", "all", "process", multiarch.uri("oci"), uri, "-f", "normalize-timestamps")
    name = "%s/%s:1" % (multiarch.url, repo)
    dockerd_or_skip.docker("pull", "--platform", "linux/arm64", name)
    try:
        image = dockerd_or_skip.inspect_image(name)
        assert image["Architecture"] == "arm64"
        child = ma.get_manifest(multiarch.url, repo,
                                [e for e in ma.get_manifest(multiarch.url, repo, "1")[2]
                                 ["manifests"] if e["platform"]["architecture"] == "arm64"]
                                [0]["digest"])[2]
        config = json.loads(ma.get_blob(multiarch.url, repo, child["config"]["digest"]))
        assert image["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
    finally:
        dockerd_or_skip.docker("rmi", name, check=False)


def test_fixture_source_is_what_skopeo_sees(multiarch):
    """Sanity of the fixture itself (passes without the feature)."""
    for kind in ("oci", "v2s2"):
        body = ma.skopeo_raw(multiarch.docker_ref(kind))
        assert json.loads(body)["mediaType"] == KINDS[kind][0]
        assert body == multiarch.manifest(kind)[1]
    assert subprocess.run(["skopeo", "inspect", "--raw", "oci:%s:%s" % (
        multiarch.layout, multiarch.layout_tag)], capture_output=True).returncode == 0
