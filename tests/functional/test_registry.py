"""registry:// in and out against Debian's docker-registry, cross-checked with skopeo
and dockerd pulling what we pushed."""
import json
import tarfile
import urllib.request

import pytest

from tests import imagebuilder as ib
from tests.cli import occystrap

pytestmark = pytest.mark.functional


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.tar"
    info = ib.build_image(path, ib.sample_layers(), repotag="example.com/occy/reg:1.0")
    return path, info


def _get(url, accept):
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request) as response:
        return response.headers.get("Content-Type"), json.loads(response.read())


def test_push_normalized_then_pull_back(image, tmp_path, registry, skopeo, dockerd):
    path, info = image
    dest = "registry://%s/occy/push:1" % registry.url
    proc = occystrap("--insecure", "process", "tar://%s" % path, dest,
                     "-f", "normalize-timestamps", check=True)
    assert "Summary: 3 layers" in proc.stderr and "verified OK" in proc.stderr
    inspected = skopeo.inspect("docker://%s/occy/push:1" % registry.url, tls_verify=False)
    raw = skopeo.inspect("docker://%s/occy/push:1" % registry.url, raw=True, tls_verify=False)
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert all(layer["mediaType"].endswith("tar.gzip") for layer in raw["layers"])
    assert inspected["Layers"] == [layer["digest"] for layer in raw["layers"]]
    config = skopeo.inspect("docker://%s/occy/push:1" % registry.url, config=True,
                            tls_verify=False)
    back = tmp_path / "back.tar"
    occystrap("--insecure", "process", dest.replace("registry", "registry", 1),
              "tar://%s" % back, check=True)
    assert skopeo.inspect("docker-archive:%s" % back)["Layers"] == config["rootfs"]["diff_ids"]
    ref = "%s/occy/push:1" % registry.url
    dockerd.docker("pull", ref)
    assert dockerd.inspect_image(ref)["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
    dockerd.docker("rmi", ref)


def test_zstd_push_is_an_oci_manifest_skopeo_accepts(image, tmp_path, registry, skopeo):
    path, _info = image
    dest = "registry://%s/occy/zstd:1" % registry.url
    occystrap("--insecure", "--compression", "zstd", "process", "tar://%s" % path, dest,
              check=True)
    raw = skopeo.inspect("docker://%s/occy/zstd:1" % registry.url, raw=True, tls_verify=False)
    assert raw["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert {layer["mediaType"] for layer in raw["layers"]} == \
        {"application/vnd.oci.image.layer.v1.tar+zstd"}
    layout = tmp_path / "layout"
    skopeo("copy", "--src-tls-verify=false", "docker://%s/occy/zstd:1" % registry.url,
           "oci:%s:1" % layout)
    back = tmp_path / "back.tar"
    occystrap("--insecure", "process", dest, "tar://%s" % back, check=True)
    occystrap("check", "tar://%s" % back, check=True)


def test_registry_to_registry_copy_keeps_digests(image, registry, skopeo):
    path, _info = image
    src = "registry://%s/occy/src:1" % registry.url
    occystrap("--insecure", "process", "tar://%s" % path, src, check=True)
    dst = "registry://%s/occy/copy:2" % registry.url
    proc = occystrap("--insecure", "process", src, dst, check=True)
    assert "verified OK" in proc.stderr
    a = skopeo.inspect("docker://%s/occy/src:1" % registry.url, raw=True, tls_verify=False)
    b = skopeo.inspect("docker://%s/occy/copy:2" % registry.url, raw=True, tls_verify=False)
    assert [layer["digest"] for layer in a["layers"]] == [layer["digest"] for layer in b["layers"]]
    assert a["config"]["digest"] == b["config"]["digest"]


def test_info_check_search_on_registry(image, registry):
    path, info = image
    src = "registry://%s/occy/meta:1" % registry.url
    occystrap("--insecure", "process", "tar://%s" % path, src, check=True)
    proc = occystrap("--insecure", "-O", "json", "info", src, check=True)
    data = json.loads(proc.stdout)
    assert data["layer_count"] == 3 and data["diff_ids"] == info["diff_ids"]
    assert [layer["compression"] for layer in data["layers"]] == ["gzip"] * 3
    proc = occystrap("--insecure", "check", src, check=True)
    assert "Check complete (full): 0 error(s), 0 warning(s)" in proc.stdout
    proc = occystrap("--insecure", "search", "--script-friendly", src, "*.pyc", check=True)
    assert proc.stdout.strip().endswith(":app/__pycache__/main.cpython-311.pyc")


def _push_platform(tmp_path, registry, arch, variant=None):
    config = {"architecture": arch}
    if variant:
        config["variant"] = variant
    path = tmp_path / ("%s.tar" % arch)
    ib.build_image(path, [ib.layer([("file", "arch", arch.encode())])], config=config)
    occystrap("--insecure", "process", "tar://%s" % path,
               "registry://%s/occy/multi:%s" % (registry.url, arch), check=True)
    ctype, manifest = _get("http://%s/v2/occy/multi/manifests/%s" % (registry.url, arch),
                           "application/vnd.docker.distribution.manifest.v2+json")
    request = urllib.request.Request(
        "http://%s/v2/occy/multi/manifests/%s" % (registry.url, arch), method="HEAD",
        headers={"Accept": ctype})
    with urllib.request.urlopen(request) as response:
        digest = response.headers["Docker-Content-Digest"]
        size = int(response.headers["Content-Length"])
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    return {"mediaType": ctype, "digest": digest, "size": size, "platform": platform}


def test_manifest_list_platform_selection(tmp_path, registry):
    entries = [_push_platform(tmp_path, registry, "amd64"),
               _push_platform(tmp_path, registry, "arm64", "v8")]
    index = {"schemaVersion": 2,
             "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
             "manifests": entries}
    request = urllib.request.Request(
        "http://%s/v2/occy/multi/manifests/list" % registry.url, method="PUT",
        data=json.dumps(index).encode(),
        headers={"Content-Type": "application/vnd.docker.distribution.manifest.list.v2+json"})
    urllib.request.urlopen(request).close()
    src = "registry://%s/occy/multi:list" % registry.url
    for arch in ("amd64", "arm64"):
        out = tmp_path / ("pulled-%s" % arch)
        # arm64 needs no --variant: v8 is unambiguous (0.4.17 demanded it, B.9)
        occystrap("--insecure", "--architecture", arch, "process", src,
                  "dir://%s?expand=true" % out, check=True)
        assert (out / "manifest" / "arch").read_text() == arch
    proc = occystrap("--insecure", "--architecture", "arm64", "--variant", "v7", "info", src,
                     check=False)
    assert "Could not find a matching manifest" in proc.stderr
    assert "linux/arm64/v8" in proc.stderr


def test_missing_image_is_one_error_line(registry, tmp_path):
    proc = occystrap("--insecure", "process", "registry://%s/occy/none:1" % registry.url,
                     "tar://%s" % (tmp_path / "o.tar"), check=False)
    assert "Error: Image not found" in proc.stderr
    assert not (tmp_path / "o.tar").exists()


def test_pull_by_digest_gives_a_loadable_tarball(image, tmp_path, registry, skopeo, dockerd):
    """A digest reference has no tag: RepoTags stays empty (`NAME:sha256:...` is refused
    by docker load) and the image loads untagged, by its config digest."""
    path, _info = image
    dest = "%s/occy/bydigest" % registry.url
    occystrap("--insecure", "process", "tar://%s" % path, "registry://%s:1" % dest, check=True)
    digest = skopeo.inspect("docker://%s:1" % dest, tls_verify=False)["Digest"]
    out = tmp_path / "dig.tar"
    occystrap("--insecure", "process", "registry://%s@%s" % (dest, digest), "tar://%s" % out,
              check=True)
    config = skopeo.inspect("docker-archive:%s" % out, config=True)
    assert "sha256:" in dockerd.load(out)
    loaded = dockerd.inspect_image(_config_id(out))
    assert loaded["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
    assert loaded["RepoTags"] == []


def _config_id(tar_path):
    with tarfile.open(tar_path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == []
    return "sha256:" + manifest[0]["Config"][:-len(".json")]


def test_plain_http_registry_without_insecure_says_so(registry, tmp_path):
    proc = occystrap("info", "registry://%s/occy/none:1" % registry.url, check=False)
    assert proc.returncode == 1
    assert "use --insecure" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
