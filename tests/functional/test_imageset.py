"""Image sets beyond the basic copies of test_multiplatform.py: search and inspect on
selected platforms, a layer shared by two platforms rewritten once, cross-repository
mounts named by the descriptor, compression changes, and the Summary of exact copies.

Real peers: the buildah-built multi-arch images in a real docker-registry
(tests/multiarch.py), skopeo as the validator.
"""
import json
import re

import pytest

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


def test_exact_copy_summary_counts_stored_bytes(multiarch):
    proc = run("--platform", "linux/arm64", "process", multiarch.uri("oci"),
               "registry://%s/imageset/summary:1" % multiarch.url)
    manifest = ma.get_manifest(multiarch.url, "imageset/summary", "1")[2]
    stored = sum(layer["size"] for layer in manifest["layers"])
    assert re.search(r"Summary: 2 layers, %d B," % stored, proc.stderr), proc.stderr


def test_json_check_of_an_index_reports_each_platform(multiarch):
    proc = run("-O", "json", "--platform", "all", "check", "--fast", multiarch.uri("oci"))
    data = json.loads(proc.stdout)
    assert [p["platform"] for p in data["platforms"]] == ["linux/amd64", "linux/arm64"]
    assert data["errors"] == 0
