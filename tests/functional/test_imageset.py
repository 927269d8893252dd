"""Image sets beyond the basic copies of test_multiplatform.py: search and inspect on
selected platforms, a layer shared by two platforms rewritten once, cross-repository
mounts named by the descriptor, compression changes, and the Summary of exact copies.

Real peers: the buildah-built multi-arch images in a real docker-registry
(tests/multiarch.py), skopeo as the validator.
"""
import gzip
import json
import re

import pytest

from occystrap.model import format_size
from tests import multiarch as ma
from tests.cli import occystrap
from tests.multiarch import multiarch_fixture  # noqa: F401  (fixture `multiarch`)

pytestmark = pytest.mark.functional

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


def run(*args, check=True):
    return occystrap("--insecure", *args, check=check, timeout=300)


def test_search_reads_every_selected_platform(multiarch):
    both = run("--platform", "all", "search", "--script-friendly", multiarch.uri("oci"),
               "platform.txt").stdout.splitlines()
    one = run("search", "--script-friendly", multiarch.uri("oci"), "platform.txt").stdout
    assert len(both) == 2 and len(set(both)) == 2      # each platform's own layer
    assert len(one.splitlines()) == 1 and one.splitlines()[0] in both


def test_shared_layer_is_rewritten_once(multiarch):
    proc = run("--verbose", "--platform", "all", "process", multiarch.uri("oci"),
               "registry://%s/imageset/once:1" % multiarch.url, "-f", "normalize-timestamps")
    # 2 platforms x 2 layers, the shared one made once: three layers done, one reused
    assert len(re.findall(r"Layer \d+/\d+ done", proc.stderr)) == 3, proc.stderr
    assert len(re.findall(r"Layer \d+/\d+ reused", proc.stderr)) == 1, proc.stderr


def test_exact_copy_to_another_repository_mounts_blobs(multiarch):
    """The descriptor says which repository a blob came from: on the same registry the
    sink mounts it instead of uploading (the registry's mount answer is 201)."""
    proc = run("--verbose", "--platform", "all", "process", multiarch.uri("oci"),
               "registry://%s/imageset/mounted:1" % multiarch.url)
    assert "Summary: 4 layers" in proc.stderr
    raw = ma.skopeo_raw("docker://%s/imageset/mounted:1" % multiarch.url)
    assert ma.sha256(raw) == ma.sha256(ma.skopeo_raw(multiarch.docker_ref("oci")))
    assert len(re.findall(r"Layer \d+/\d+ reused", proc.stderr)) == 4, proc.stderr
    assert not re.findall(r"Layer \d+/\d+ done", proc.stderr), proc.stderr


def test_compression_change_rewrites_layers_and_keeps_the_index(multiarch, tmp_path):
    run("--platform", "all", "--compression", "zstd", "process", multiarch.uri("v2s2"),
        "registry://%s/imageset/zstd:1" % multiarch.url)
    _ctype, _body, index = ma.get_manifest(multiarch.url, "imageset/zstd", "1")
    # a Docker list of OCI children would be refused by clients: zstd needs OCI
    children = [ma.get_manifest(multiarch.url, "imageset/zstd", e["digest"])[2]
                for e in index["manifests"]]
    assert {c["mediaType"] for c in children} == {OCI_MANIFEST}
    assert {layer["mediaType"] for c in children for layer in c["layers"]} == {OCI_ZSTD}
    assert [e["platform"]["architecture"] for e in index["manifests"]] == ["amd64", "arm64"]
    ma.peers.skopeo("copy", "--all", "--src-tls-verify=false",
                    "docker://%s/imageset/zstd:1" % multiarch.url, "oci:%s:x" % (tmp_path / "o"))


def _uncompressed(url, repo, manifest):
    """The layers' total uncompressed size, by decompressing them (the copier doesn't)."""
    return sum(len(gzip.decompress(ma.get_blob(url, repo, layer["digest"])))
               for layer in manifest["layers"])


def _summary_size(stderr):
    return re.search(r"Summary: \d+ layers, ([^,]+),", stderr).group(1)


def test_exact_copy_summary_counts_uncompressed_bytes(multiarch):
    """Mounted from the source repository (not read): SIZE from each blob's gzip
    trailer, fetched with a Range request; the second run finds them all by HEAD."""
    for _run in range(2):
        proc = run("--platform", "linux/arm64", "process", multiarch.uri("oci"),
                   "registry://%s/imageset/summary:1" % multiarch.url)
        manifest = ma.get_manifest(multiarch.url, "imageset/summary", "1")[2]
        total = _uncompressed(multiarch.url, "imageset/summary", manifest)
        assert total != sum(layer["size"] for layer in manifest["layers"])
        assert _summary_size(proc.stderr) == format_size(total), proc.stderr


def test_exact_copy_from_a_layout_counts_uncompressed_bytes(multiarch):
    """ocidir -> registry streams each blob (SIZE from the bytes as they pass), then,
    every blob already there, reads each one's tail from the layout (a seek)."""
    source = "ocidir://%s:%s" % (multiarch.layout, multiarch.layout_tag)
    sizes = [_summary_size(run("--platform", "all", "process", source,
                               "registry://%s/imageset/fromdir:1" % multiarch.url).stderr)
             for _run in range(2)]
    index = ma.get_manifest(multiarch.url, "imageset/fromdir", "1")[2]
    children = [ma.get_manifest(multiarch.url, "imageset/fromdir", e["digest"])[2]
                for e in index["manifests"]]
    total = sum(_uncompressed(multiarch.url, "imageset/fromdir", c) for c in children)
    assert sizes == [format_size(total)] * 2


def test_json_check_of_an_index_reports_each_platform(multiarch):
    proc = run("-O", "json", "--platform", "all", "check", "--fast", multiarch.uri("oci"))
    data = json.loads(proc.stdout)
    assert [p["platform"] for p in data["platforms"]] == ["linux/amd64", "linux/arm64"]
    assert data["errors"] == 0


# --- referrers ---------------------------------------------------------------------------

EMPTY = "application/vnd.oci.empty.v1+json"


def _push_blob(url, repo, data):
    import urllib.request
    digest = ma.sha256(data)
    start = urllib.request.Request("http://%s/v2/%s/blobs/uploads/" % (url, repo),
                                   data=b"", method="POST")
    with urllib.request.urlopen(start) as response:
        location = response.headers["Location"]
    if location.startswith("/"):
        location = "http://%s%s" % (url, location)
    put = urllib.request.Request("%s%sdigest=%s" % (location, "&" if "?" in location else "?",
                                                   digest), data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(put) as response:
        assert response.status == 201
    return {"mediaType": EMPTY if data == b"{}" else "application/octet-stream",
            "digest": digest, "size": len(data)}


def _put_manifest(url, repo, reference, document, media_type):
    import urllib.request
    raw = json.dumps(document).encode()
    request = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (url, repo, reference),
                                     data=raw, method="PUT",
                                     headers={"Content-Type": media_type})
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
    return {"mediaType": media_type, "digest": ma.sha256(raw), "size": len(raw)}


@pytest.fixture(scope="module")
def signed(multiarch):
    """A copy of REPO:oci in its own repository with two referrers of its index, as
    distribution 2.8 can hold them (it has no referrers API): an artifact whose subject
    is the index, listed by the fallback tag `sha256-<hex>`, and a cosign-style
    `sha256-<hex>.sig` manifest."""
    repo = "imageset/signed"
    run("--platform", "all", "process", multiarch.uri("oci"),
        "registry://%s/%s:1" % (multiarch.url, repo))
    _ctype, body, _index = ma.get_manifest(multiarch.url, repo, "1")
    subject = {"mediaType": "application/vnd.oci.image.index.v1+json",
               "digest": ma.sha256(body), "size": len(body)}
    config = _push_blob(multiarch.url, repo, b"{}")
    sbom = _push_blob(multiarch.url, repo, b'{"sbom": "made up for the test"}')
    document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "artifactType": "application/spdx+json", "config": config,
                "layers": [sbom], "subject": subject}
    raw = json.dumps(document).encode()
    artifact = _put_manifest(multiarch.url, repo, ma.sha256(raw), document, OCI_MANIFEST)
    artifact["artifactType"] = "application/spdx+json"
    tag = "sha256-" + subject["digest"].split(":")[1]
    _put_manifest(multiarch.url, repo, tag, {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [artifact]}, "application/vnd.oci.image.index.v1+json")
    signature = _push_blob(multiarch.url, repo, b"a made-up signature payload")
    _put_manifest(multiarch.url, repo, tag + ".sig", {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
        "layers": [signature]}, OCI_MANIFEST)
    return repo, tag


def test_referrers_are_copied_with_an_unchanged_image(multiarch, signed):
    repo, tag = signed
    run("--referrers", "--platform", "all", "process",
        "registry://%s/%s:1" % (multiarch.url, repo),
        "registry://%s/imageset/signed-copy:1" % multiarch.url)
    for reference in (tag, tag + ".sig"):
        source = ma.skopeo_raw("docker://%s/%s:%s" % (multiarch.url, repo, reference))
        copied = ma.skopeo_raw("docker://%s/imageset/signed-copy:%s" % (multiarch.url,
                                                                        reference))
        assert ma.sha256(copied) == ma.sha256(source)
    index = json.loads(ma.skopeo_raw("docker://%s/imageset/signed-copy:%s"
                                     % (multiarch.url, tag)))
    artifact = index["manifests"][0]
    _ctype, _body, manifest = ma.get_manifest(multiarch.url, "imageset/signed-copy",
                                              artifact["digest"])
    assert ma.get_blob(multiarch.url, "imageset/signed-copy",
                       manifest["layers"][0]["digest"]) == b'{"sbom": "made up for the test"}'


def test_referrers_are_not_copied_without_the_option(multiarch, signed):
    repo, tag = signed
    run("--platform", "all", "process", "registry://%s/%s:1" % (multiarch.url, repo),
        "registry://%s/imageset/unsigned-copy:1" % multiarch.url)
    proc = ma.peers.skopeo("list-tags", "--tls-verify=false",
                           "docker://%s/imageset/unsigned-copy" % multiarch.url)
    assert json.loads(proc.stdout)["Tags"] == ["1"]


def test_rewritten_image_drops_its_referrers_and_says_so(multiarch, signed):
    repo, _tag = signed
    proc = run("--referrers", "--platform", "all", "process",
               "registry://%s/%s:1" % (multiarch.url, repo),
               "registry://%s/imageset/rewritten:1" % multiarch.url, "-f",
               "normalize-timestamps")
    assert "2 referrer(s) of the source not copied: the image was rewritten" in proc.stderr
    listed = ma.peers.skopeo("list-tags", "--tls-verify=false",
                             "docker://%s/imageset/rewritten" % multiarch.url)
    assert json.loads(listed.stdout)["Tags"] == ["1"]


def test_layer_cache_works_per_child(multiarch, tmp_path):
    """A second rewrite of the index into another repository takes every layer from
    the layer cache (mounted from the first push), for every platform."""
    cache = str(tmp_path / "layers.db")
    first = run("--verbose", "--layer-cache", cache, "--platform", "all", "process",
                multiarch.uri("oci"), "registry://%s/imageset/cache-a:1" % multiarch.url,
                "-f", "normalize-timestamps")
    second = run("--verbose", "--layer-cache", cache, "--platform", "all", "process",
                 multiarch.uri("oci"), "registry://%s/imageset/cache-b:1" % multiarch.url,
                 "-f", "normalize-timestamps")
    assert "Layer cache: 0 hits, 3 misses, 3 stored" in first.stderr, first.stderr
    assert "Layer cache: 3 hits, 0 misses, 0 stored" in second.stderr, second.stderr
    raw_a = ma.skopeo_raw("docker://%s/imageset/cache-a:1" % multiarch.url)
    raw_b = ma.skopeo_raw("docker://%s/imageset/cache-b:1" % multiarch.url)
    assert ma.sha256(raw_a) == ma.sha256(raw_b)     # the same rewritten index


def test_corrupt_blob_fails_an_exact_copy_and_leaves_no_tag(multiarch):
    """A blob that does not hash to its descriptor is an error, in an exact copy too
    (no decompression to catch it): one Error: line, exit 1, and no tag written."""
    from tests.faultproxy import FaultProxy
    arm = multiarch.child("oci", "arm64")
    _ctype, _body, child = ma.get_manifest(multiarch.url, multiarch.repo, arm["digest"])
    layer = child["layers"][1]["digest"]
    with FaultProxy(multiarch.url) as proxy:
        proxy.add("GET", r"/blobs/%s$" % layer, "corrupt", count=100)
        proc = run("--platform", "all", "process",
                   "registry://%s/%s:oci" % (proxy.address, multiarch.repo),
                   "registry://%s/imageset/corrupt:1" % multiarch.url, check=False)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "failed digest verification" in errors[0], proc.stderr
    listed = ma.peers.skopeo("list-tags", "--tls-verify=false",
                             "docker://%s/imageset/corrupt" % multiarch.url, check=False)
    assert listed.returncode != 0 or "1" not in json.loads(listed.stdout)["Tags"]


def test_rewritten_index_and_children_record_their_source(multiarch):
    run("--platform", "all", "process", multiarch.uri("oci"),
        "registry://%s/imageset/provenance:1" % multiarch.url, "-f", "normalize-timestamps")
    _ctype, source_body, source = ma.get_manifest(multiarch.url, multiarch.repo, "oci")
    _ctype, _body, index = ma.get_manifest(multiarch.url, "imageset/provenance", "1")
    notes = index["annotations"]
    assert notes["org.occystrap.source.digest"] == ma.sha256(source_body)
    assert notes["org.occystrap.platforms"] == "all"
    rewrite = notes["org.occystrap.rewrite"]
    for entry, old in zip(index["manifests"], source["manifests"]):
        child = ma.get_manifest(multiarch.url, "imageset/provenance", entry["digest"])[2]
        assert child["annotations"]["org.occystrap.source.digest"] == old["digest"]
        assert child["annotations"]["org.occystrap.rewrite"] == rewrite
    # another filter option is another rewrite
    run("--platform", "all", "process", multiarch.uri("oci"),
        "registry://%s/imageset/provenance:2" % multiarch.url, "-f",
        "normalize-timestamps:ts=5")
    other = ma.get_manifest(multiarch.url, "imageset/provenance", "2")[2]["annotations"]
    assert other["org.occystrap.rewrite"] != rewrite


def test_exact_copy_from_an_oci_archive_counts_uncompressed_bytes(multiarch, tmp_path):
    """The same from a layout's tar: the reused blobs' tails are slices of the file."""
    archive = "oci-archive://%s:v1" % (tmp_path / "image.tar")
    run("process", multiarch.uri("oci"), archive)
    procs = [run("--verbose", "process", archive,
                 "registry://%s/imageset/fromtar:1" % multiarch.url) for _run in range(2)]
    assert [proc.stderr.count(" reused: ") for proc in procs] == [0, 2]
    sizes = [_summary_size(proc.stderr) for proc in procs]
    manifest = ma.get_manifest(multiarch.url, "imageset/fromtar", "1")[2]
    assert sizes == [format_size(_uncompressed(multiarch.url, "imageset/fromtar", manifest))] * 2
