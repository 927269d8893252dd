"""Bad registry answers (injected in front of a real docker-registry): a clear Error,
no half-written output and no half-pushed tag; transient faults are retried."""
import json
import os
import urllib.error
import urllib.request

import pytest

from tests import imagebuilder as ib
from tests.cli import occystrap
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.functional


@pytest.fixture
def pushed(registry, tmp_path):
    path = tmp_path / "in.tar"
    ib.build_image(path, ib.sample_layers())
    occystrap("--insecure", "process", "tar://%s" % path,
              "registry://%s/faults/src:1" % registry.url, check=True)
    return path


def _tag_exists(registry, repo, tag):
    request = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (registry.url, repo, tag),
                                     method="HEAD", headers={"Accept": "*/*"})
    try:
        urllib.request.urlopen(request).close()
        return True
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        return False


def test_corrupt_blob_is_refused(registry, pushed, tmp_path):
    with FaultProxy(registry.url) as proxy:
        proxy.add("GET", r"/blobs/sha256:", "corrupt", count=100)
        out = tmp_path / "o.tar"
        proc = occystrap("--insecure", "process", "registry://%s/faults/src:1" % proxy.address,
                         "tar://%s" % out, check=False)
    assert "digest" in proc.stderr
    assert not out.exists()


def test_cut_download_resumes(registry, pushed, tmp_path):
    with FaultProxy(registry.url) as proxy:
        proxy.add("GET", r"/blobs/sha256:", "cut", count=2)
        out = tmp_path / "o.tar"
        occystrap("--insecure", "process", "registry://%s/faults/src:1" % proxy.address,
                  "tar://%s" % out, check=True)
    occystrap("check", "tar://%s" % out, check=True)


def test_transient_5xx_on_push_is_retried(registry, pushed, tmp_path):
    with FaultProxy(registry.url) as proxy:
        proxy.add("PUT", r"/manifests/", 503, count=1)
        proxy.add("HEAD", r"/blobs/", 500, count=1)
        occystrap("--insecure", "process", "tar://%s" % pushed,
                  "registry://%s/faults/retried:1" % proxy.address, check=True)
    assert _tag_exists(registry, "faults/retried", "1")


def test_failing_push_leaves_no_tag(registry, pushed, tmp_path):
    with FaultProxy(registry.url) as proxy:
        proxy.add("PUT", r"/blobs/uploads/", 500, count=100)
        proc = occystrap("--insecure", "--retries", "1", "process", "tar://%s" % pushed,
                         "registry://%s/faults/broken:1" % proxy.address, check=False)
    assert "500" in proc.stderr
    assert not _tag_exists(registry, "faults/broken", "1")


def test_streamed_upload_through_a_flaky_registry(registry, tmp_path):
    """Layers over 1 MiB stream as one chunked PATCH; a 5xx on it fails the push cleanly."""
    path = tmp_path / "big.tar"
    ib.build_image(path, [ib.layer([("file", "blob", os.urandom(3 << 20))])])
    with FaultProxy(registry.url) as proxy:
        occystrap("--insecure", "process", "tar://%s" % path,
                  "registry://%s/faults/big:1" % proxy.address, check=True)
        proxy.add("PATCH", r"/blobs/uploads/", 500, count=100)
        proc = occystrap("--insecure", "process", "tar://%s" % path,
                         "registry://%s/faults/big:2" % proxy.address, "-f",
                         "normalize-timestamps", check=False)
    assert "500" in proc.stderr
    assert _tag_exists(registry, "faults/big", "1")
    assert not _tag_exists(registry, "faults/big", "2")


def _manifest_change(change):
    def transform(data):
        manifest = json.loads(data)
        change(manifest)
        return json.dumps(manifest).encode()
    return transform


@pytest.mark.parametrize("transform, message", [
    (lambda data: b"[" * 100000 + b"]" * 100000,
     "is not valid JSON: nested more than 100 levels deep"),
    (lambda data: b"[1, 2]", "is not a JSON object"),
    (lambda data: b'{"schemaVersion": NaN}', "NaN is not a JSON value"),
    (_manifest_change(lambda m: m["layers"][0].update(digest="sha256:../../../v2/_catalog")),
     "bad descriptor digest 'sha256:../../../v2/_catalog'"),
    (_manifest_change(lambda m: m["layers"][1].update(size="12")), "bad size '12' of sha256:"),
    (_manifest_change(lambda m: m["config"].update(mediaType=5)), "bad mediaType 5 of sha256:"),
    (_manifest_change(lambda m: m.update(layers=[["x"]])), "bad descriptor digest ['x']"),
], ids=["deep", "list", "nan", "digest-path", "size-text", "media-type-number", "layer-list"])
def test_malformed_manifest_from_the_registry(registry, pushed, tmp_path, transform, message):
    with FaultProxy(registry.url) as proxy:
        proxy.add("GET", r"/manifests/1$", transform, count=100)
        out = tmp_path / "o.tar"
        proc = occystrap("--insecure", "process", "registry://%s/faults/src:1" % proxy.address,
                         "tar://%s" % out, check=False)
        info = occystrap("--insecure", "info", "registry://%s/faults/src:1" % proxy.address,
                         check=False)
    assert message in proc.stderr and message in info.stderr
    assert not out.exists()
