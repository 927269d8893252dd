"""Bad registry answers (injected in front of a real docker-registry): a clear Error,
no half-written output and no half-pushed tag; transient faults are retried."""
import gzip
import json
import os
import re
import urllib.error
import urllib.request

import pytest

from occystrap.model import format_size
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
    """Two blob downloads are cut halfway; each resumes with a Range request from where
    it stopped (not from 0), and the image is whole."""
    with FaultProxy(registry.url) as proxy:
        proxy.add("GET", r"/blobs/sha256:", "cut", count=2)
        out = tmp_path / "o.tar"
        occystrap("--insecure", "process", "registry://%s/faults/src:1" % proxy.address,
                  "tar://%s" % out, check=True)
        assert proxy.fired("GET") == 2
        resumed = [(path, value) for path, value in proxy.ranges
                   if "/blobs/sha256:" in path and re.match(r"bytes=[1-9]\d*-$", value)]
        assert len(resumed) == 2, proxy.ranges
    occystrap("check", "tar://%s" % out, check=True)


def test_transient_5xx_on_push_is_retried(registry, pushed, tmp_path):
    with FaultProxy(registry.url) as proxy:
        proxy.add("PUT", r"/manifests/", 503, count=1)
        proxy.add("HEAD", r"/blobs/", 500, count=1)
        occystrap("--insecure", "process", "tar://%s" % pushed,
                  "registry://%s/faults/retried:1" % proxy.address, check=True)
    assert _tag_exists(registry, "faults/retried", "1")


def test_retries_zero_means_one_attempt(registry, pushed, tmp_path):
    """--retries 0 (0.4.17 scripts pass it) sends each request once: one 503 fails."""
    with FaultProxy(registry.url) as proxy:
        proxy.add("PUT", r"/manifests/", 503, count=1)
        proc = occystrap("--insecure", "--retries", "0", "process", "tar://%s" % pushed,
                         "registry://%s/faults/once:1" % proxy.address, check=False)
        assert proxy.fired("PUT") == 1
    assert "503" in proc.stderr
    assert not _tag_exists(registry, "faults/once", "1")


def test_failing_push_leaves_no_tag(registry, pushed, tmp_path):
    with FaultProxy(registry.url) as proxy:
        proxy.add("PUT", r"/blobs/uploads/", 500, count=100)
        proc = occystrap("--insecure", "--retries", "1", "process", "tar://%s" % pushed,
                         "registry://%s/faults/broken:1" % proxy.address, check=False)
    assert "500" in proc.stderr
    assert not _tag_exists(registry, "faults/broken", "1")


def test_streamed_upload_through_a_flaky_registry(registry, tmp_path):
    """Layers over 1 MiB stream as one chunked PATCH; a 5xx on it that outlasts the
    retries fails the push cleanly."""
    path = tmp_path / "big.tar"
    ib.build_image(path, [ib.layer([("file", "blob", os.urandom(3 << 20))])])
    with FaultProxy(registry.url) as proxy:
        occystrap("--insecure", "process", "tar://%s" % path,
                  "registry://%s/faults/big:1" % proxy.address, check=True)
        proxy.add("PATCH", r"/blobs/uploads/", (500, {"Retry-After": "0"}), count=100)
        proc = occystrap("--insecure", "process", "tar://%s" % path,
                         "registry://%s/faults/big:2" % proxy.address, "-f",
                         "normalize-timestamps", check=False)
        assert proxy.fired() == 4                  # the first try and --retries' default 3
    assert "500" in proc.stderr
    assert _tag_exists(registry, "faults/big", "1")
    assert not _tag_exists(registry, "faults/big", "2")


@pytest.mark.parametrize("fault", ["corrupt", ("header", "Docker-Content-Digest",
                                               "sha256:" + "0" * 64)],
                         ids=["body", "header"])
def test_manifest_by_tag_is_checked_against_docker_content_digest(registry, pushed,
                                                                  tmp_path, fault):
    with FaultProxy(registry.url) as proxy:
        proxy.add("GET", r"/manifests/1$", fault)
        out = tmp_path / "o.tar"
        proc = occystrap("--insecure", "process", "registry://%s/faults/src:1" % proxy.address,
                         "tar://%s" % out, check=False)
        assert proxy.fired() == 1
    assert "manifest of %s/faults/src:1 does not match the registry's Docker-Content-Digest" \
        % proxy.address in proc.stderr
    assert not out.exists()


def test_manifest_by_digest_is_checked_against_the_reference(registry, pushed, tmp_path,
                                                            skopeo):
    digest = skopeo.inspect("docker://%s/faults/src:1" % registry.url,
                            tls_verify=False)["Digest"]
    with FaultProxy(registry.url) as proxy:
        proxy.add("GET", r"/manifests/sha256:", "corrupt")
        out = tmp_path / "o.tar"
        proc = occystrap("--insecure", "process",
                         "registry://%s/faults/src@%s" % (proxy.address, digest),
                         "tar://%s" % out, check=False)
        assert proxy.fired() == 1
    assert "manifest %s of %s/faults/src@%s does not match its digest" \
        % (digest, proxy.address, digest) in proc.stderr
    assert not out.exists()


# -- faults on a blob upload: resume from the registry's offset, or make the layer again -

UPLOADS = r"/blobs/uploads/"


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    """An image whose first layer (3 MiB of noise) streams as a PATCH, then a small one
    that goes up with its PUT alone."""
    path = tmp_path_factory.mktemp("streamed") / "in.tar"
    info = ib.build_image(path, [ib.layer([("file", "noise", os.urandom(3 << 20))]),
                                 ib.layer([("file", "small", b"x" * 100)])])
    return path, info


def _push(proxy, image, repository, *options, check=True):
    # -j 1: the big layer is uploaded first, so "the first PUT" is its final PUT
    return occystrap("--insecure", "--verbose", "-j", "1", *options, "process",
                     "tar://%s" % image, "registry://%s/%s:1" % (proxy.address, repository),
                     check=check)


def _requests(registry, image, repository):
    """(PATCH, PUT) upload requests of a clean push of image: what a fault adds to."""
    with FaultProxy(registry.url) as proxy:
        _push(proxy, image, repository)
        return proxy.count("PATCH", UPLOADS), proxy.count("PUT", UPLOADS)


def _assert_pulls_back(registry, repository, info, skopeo, tmp_path):
    """skopeo reads the pushed image from the registry (it checks every digest) and it
    holds the layers that were pushed."""
    ref = "docker://%s/%s:1" % (registry.url, repository)
    assert skopeo.inspect(ref, tls_verify=False)["Layers"]
    out = tmp_path / "back.tar"
    skopeo("copy", "--src-tls-verify=false", ref, "docker-archive:%s" % out)
    assert skopeo.inspect("docker-archive:%s" % out)["Layers"] == info["diff_ids"]


FAULTS = {"500": 500, "503-retry-after": (503, {"Retry-After": "0"}), "reset": "reset",
          "lost": "lost"}


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_one_upload_fault_is_recovered(registry, streamed, skopeo, tmp_path, method, fault):
    """The failed request is sent again after a GET of the upload's status, except
    when a PUT's answer was lost and the registry has the blob (its HEAD says so)."""
    image, info = streamed
    repository = "faults/upload-%s-%s" % (method.lower(), fault)
    patches, puts = _requests(registry, image, repository + "-clean")
    with FaultProxy(registry.url) as proxy:
        proxy.add(method, UPLOADS, FAULTS[fault])
        proc = _push(proxy, image, repository)
        assert proxy.fired() == 1
        again = 0 if (method, fault) == ("PUT", "lost") else 1
        sent = {"PATCH": patches, "PUT": puts}
        sent[method] += again
        assert proxy.count("PATCH", UPLOADS) == sent["PATCH"]
        assert proxy.count("PUT", UPLOADS) == sent["PUT"]
        assert proxy.count("GET", UPLOADS) == again
    if fault == "503-retry-after":
        assert "retry 1 in 0.0 s" in proc.stderr         # Retry-After, not the 1 s backoff
    _assert_pulls_back(registry, repository, info, skopeo, tmp_path)


def test_layer_is_made_again_when_the_registry_lost_what_is_not_held(registry, skopeo,
                                                                     tmp_path):
    """A PATCH of more than the kept window fails and the registry holds nothing of
    it: the layer is produced again from the source and uploaded in a new session."""
    image = tmp_path / "huge.tar"
    info = ib.build_image(image, [ib.layer([("file", "noise", os.urandom(12 << 20))])])
    patches, _ = _requests(registry, image, "faults/remade-clean")
    with FaultProxy(registry.url) as proxy:
        proxy.add("PATCH", UPLOADS, 500)
        proc = _push(proxy, image, "faults/remade")
        assert proxy.fired() == 1
        assert proxy.count("PATCH", UPLOADS) == patches + 1
    assert "making it again" in proc.stderr
    _assert_pulls_back(registry, "faults/remade", info, skopeo, tmp_path)


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_upload_fault_beyond_retries_is_one_error(registry, streamed, method):
    image, _ = streamed
    repository = "faults/persistent-%s" % method.lower()
    with FaultProxy(registry.url) as proxy:
        proxy.add(method, UPLOADS, (500, {"Retry-After": "0"}), count=100)
        proc = _push(proxy, image, repository, "--retries", "2", check=False)
        assert proxy.fired() == 3                          # the first try and 2 retries
    assert "500" in proc.stderr
    assert not _tag_exists(registry, repository, "1")


def test_token_expiring_mid_upload_resumes(registry_token, token_server, streamed, skopeo,
                                           tmp_path):
    """A 401 on the streamed PATCH (its token expired): the token is renewed and the
    upload resumed, not the spent stream sent again (the blob would lack its start)."""
    image, info = streamed
    challenge = ('Bearer realm="%s",service="%s",scope="repository:faults/expired:pull,push"'
                 % (token_server.realm, token_server.service))
    with FaultProxy(registry_token.url) as proxy:
        proxy.add("PATCH", UPLOADS, (401, {"WWW-Authenticate": challenge}))
        proc = occystrap("--insecure", "--verbose", "-j", "1", "--username", "testuser",
                         "--password", "testpass", "process", "tar://%s" % image,
                         "registry://%s/faults/expired:1" % proxy.address, check=True)
        assert proxy.fired() == 1
        assert "credentials renewed; the streamed body must be sent again); retry 1 in " \
            "0.0 s" in proc.stderr
        assert proxy.count("GET", UPLOADS) == 1
    out = tmp_path / "back.tar"
    skopeo("copy", "--src-tls-verify=false", "--src-creds", "testuser:testpass",
           "docker://%s/faults/expired:1" % registry_token.url, "docker-archive:%s" % out)
    assert skopeo.inspect("docker-archive:%s" % out)["Layers"] == info["diff_ids"]


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


def _summary_size(stderr):
    return re.search(r"Summary: \d+ layers, ([^,]+),", stderr).group(1)


def _layer_sizes(registry, repo):
    """(stored, uncompressed) totals of repo:1's layers, the latter by decompressing."""
    request = urllib.request.Request(
        "http://%s/v2/%s/manifests/1" % (registry.url, repo),
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    layers = json.loads(urllib.request.urlopen(request).read())["layers"]
    blobs = [urllib.request.urlopen("http://%s/v2/%s/blobs/%s"
                                    % (registry.url, repo, layer["digest"])).read()
             for layer in layers]
    return sum(len(blob) for blob in blobs), sum(len(gzip.decompress(b)) for b in blobs)


@pytest.mark.parametrize("fault", [None, "norange", 416, 500])
def test_reused_layer_size_comes_from_one_ranged_get(registry, pushed, fault):
    """A byte-exact copy whose blobs are mounted reads each layer's last bytes with one
    `Range: bytes=-N` GET; a registry that ignores Range sends the small blob whole
    (still exact), and one that refuses makes SIZE the stored size, with no error."""
    stored, uncompressed = _layer_sizes(registry, "faults/src")
    with FaultProxy(registry.url) as proxy:
        if fault is not None:
            proxy.add("GET", r"/blobs/sha256:", fault, count=100)
        proc = occystrap("--insecure", "--verbose", "process",
                         "registry://%s/faults/src:1" % proxy.address,
                         "registry://%s/faults/tail-%s:1" % (proxy.address, str(fault).lower()),
                         check=True)
        tails = [value for path, value in proxy.ranges if "/blobs/sha256:" in path]
    layers = proc.stderr.count(" reused: ")
    assert layers == 3 and tails == ["bytes=-64"] * layers, (tails, proc.stderr)
    expected = uncompressed if fault in (None, "norange") else stored
    assert _summary_size(proc.stderr) == format_size(expected)


def test_sync_reads_no_tails(registry, pushed):
    """sync shows no SIZE, so a layer the destination already has costs no Range GET."""
    import occystrap as library     # tests.cli's occystrap (the CLI) is `occystrap` here
    with FaultProxy(registry.url) as proxy:
        src = "registry://%s/faults/src" % proxy.address
        occystrap("--insecure", "process", src + ":1",
                "registry://%s/faults/synced:other" % registry.url, check=True)
        before = len(proxy.ranges)
        report = library.sync({"sync": [{"source": src, "destination": "registry://%s/"
                                         "faults/synced" % registry.url}]},
                              {"insecure": True})
        assert [r.status for r in report.images] == ["copied"]
        assert report.images[0].layers_reused == 3
        assert len(proxy.ranges) == before
