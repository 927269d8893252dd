"""dockerpush:// against a real dockerd and podman's Docker-compatible service.

The daemon really pushes into occystrap's embedded HTTPS registry; the output tarball is
validated by skopeo and compared with what the daemon itself reports (RootFS, Id).
Every run passes its own `?socket=` and --temp-dir (which must be empty afterwards: the
certificate and the blob store are gone), and image names are unique per daemon and test.

Two extra podman services prove the E.2 #10 fix and the error path: one with no
registries.conf entry for 127.0.0.1 (so podman verifies TLS unless the push says
tlsVerify=false; 0.4.17 failed there with x509) and one that blocks 127.0.0.1 (the
push stream carries an error, which must become one Error: line).
"""
import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import urllib.request

import pytest

from occystrap.model import format_size
from tests import imagebuilder as ib
from tests import peers
from tests.cli import occystrap

pytestmark = pytest.mark.functional

CONF_HEAD = 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n'
CONF_STRICT = CONF_HEAD        # nothing about 127.0.0.1: podman verifies its TLS
CONF_BLOCKED = CONF_HEAD + '[[registry]]\nlocation = "127.0.0.1"\nblocked = true\n'


class ConfiguredPodman(peers.Podman):
    """A podman service with its own registries.conf text."""

    def __init__(self, conf):
        super().__init__()
        self.conf = conf

    def prepare(self):
        super().prepare()
        with open(self.registries_conf, "w") as f:
            f.write(self.conf)


def _podman_with(conf):
    if not (peers.have("podman") and peers.have("docker")):
        pytest.skip("podman is not installed (apt-get install it; see .ci/run)")
    return ConfiguredPodman(conf).start()


@pytest.fixture(scope="module")
def podman_strict():
    daemon = _podman_with(CONF_STRICT)
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def podman_blocked():
    daemon = _podman_with(CONF_BLOCKED)
    yield daemon
    daemon.stop()


@pytest.fixture(params=["dockerd", "podman"])
def daemon(request):
    return request.getfixturevalue(request.param)


# -- helpers -------------------------------------------------------------------------------

def push_uri(peer, ref):
    return "dockerpush://%s?socket=%s" % (ref, peer.socket)


def run(*args, tmp, check=True, env=None):
    temp = tmp / "occy-tmp"
    temp.mkdir(exist_ok=True)
    return occystrap("--temp-dir", temp, *args, check=check, env=env)


def assert_clean(peer, tmp, repository):
    """No temp files (cert, blobs) and no temporary 127.0.0.1:<port>/ tag left."""
    assert os.listdir(tmp / "occy-tmp") == []
    tags = peer.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    pattern = re.compile(r"^127\.0\.0\.1:\d+/%s:" % re.escape(repository))
    assert [t for t in tags if pattern.match(t)] == []


def load_image(peer, tmp, repotag):
    src = tmp / "in.tar"
    ib.build_image(src, ib.sample_layers(), repotag=repotag)
    peer.load(src)
    return peer.inspect_image(repotag)


def read_output(path):
    """(manifest entry, config, [(sha256 of layer tar, [member mtimes])])."""
    layers = []
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        config = json.load(tar.extractfile(manifest["Config"]))
        for name in manifest["Layers"]:
            data = tar.extractfile(name).read()
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                mtimes = [member.mtime for member in layer.getmembers()]
            layers.append(("sha256:" + hashlib.sha256(data).hexdigest(), mtimes))
    return manifest, config, layers


def validate_with_skopeo(skopeo, path, tmp):
    """skopeo reads the archive and copies it to an OCI layout (checking every digest)."""
    inspected = skopeo.inspect("docker-archive:%s" % path)
    config = skopeo.inspect("docker-archive:%s" % path, config=True)
    skopeo("copy", "docker-archive:%s" % path, "oci:%s:check" % (tmp / "oci-check"))
    return inspected, config


def rmi(peer, ref):
    peer.docker("rmi", ref, check=False)


# -- tests ---------------------------------------------------------------------------------

def test_push_to_tar(daemon, skopeo, tmp_path):
    repository = "example.com/occy-dp/plain-%s" % daemon.name
    ref = repository + ":3"
    inspected = load_image(daemon, tmp_path, ref)
    out = tmp_path / "out.tar"
    proc = run("process", push_uri(daemon, ref), "tar://%s" % out, tmp=tmp_path)
    assert proc.stderr.strip().endswith("verified OK")
    info, config = validate_with_skopeo(skopeo, out, tmp_path)
    assert config["rootfs"]["diff_ids"] == inspected["RootFS"]["Layers"]
    assert info["Layers"] == inspected["RootFS"]["Layers"]    # uncompressed in a tarball
    manifest, config, layers = read_output(out)
    # the pushed config is the daemon's own: same bytes, same image id
    assert "sha256:" + manifest["Config"][:-len(".json")] == inspected["Id"]
    assert [digest for digest, _ in layers] == inspected["RootFS"]["Layers"]
    assert manifest["RepoTags"] == [ref]
    assert daemon.inspect_image(ref)["Id"] == inspected["Id"]      # the image is untouched
    assert_clean(daemon, tmp_path, repository)
    rmi(daemon, ref)


def test_filtered_push_to_tar(daemon, skopeo, tmp_path):
    repository = "example.com/occy-dp/filtered-%s" % daemon.name
    ref = repository + ":1"
    inspected = load_image(daemon, tmp_path, ref)
    out = tmp_path / "out.tar"
    proc = run("process", push_uri(daemon, ref), "tar://%s" % out, "-f",
               "normalize-timestamps:ts=7", tmp=tmp_path)
    assert proc.stderr.strip().endswith("verified OK")
    _, config = validate_with_skopeo(skopeo, out, tmp_path)
    manifest, config_in_tar, layers = read_output(out)
    assert config == config_in_tar
    assert config["rootfs"]["diff_ids"] == [digest for digest, _ in layers]
    assert len(layers) == len(inspected["RootFS"]["Layers"])
    assert config["rootfs"]["diff_ids"] != inspected["RootFS"]["Layers"]
    for _, mtimes in layers:
        assert mtimes and set(mtimes) == {7}
    assert_clean(daemon, tmp_path, repository)
    rmi(daemon, ref)


def test_info(daemon, tmp_path):
    repository = "example.com/occy-dp/info-%s" % daemon.name
    ref = repository + ":2"
    inspected = load_image(daemon, tmp_path, ref)
    proc = run("-O", "json", "info", push_uri(daemon, ref), tmp=tmp_path)
    data = json.loads(proc.stdout)
    assert (data["image"], data["tag"]) == (repository, "2")
    assert data["config_digest"] == inspected["Id"]
    assert data["diff_ids"] == inspected["RootFS"]["Layers"]
    assert data["layer_count"] == len(inspected["RootFS"]["Layers"])
    assert_clean(daemon, tmp_path, repository)
    rmi(daemon, ref)


def test_unknown_image(daemon, tmp_path):
    repository = "example.com/occy-dp/missing-%s" % daemon.name
    out = tmp_path / "out.tar"
    proc = run("process", push_uri(daemon, repository + ":9"), "tar://%s" % out,
               tmp=tmp_path, check=False)
    assert "Error: Image not found: %s:9" % repository in proc.stderr
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["occy-tmp"]
    assert_clean(daemon, tmp_path, repository)


def test_missing_openssl(dockerd, tmp_path):
    repository = "example.com/occy-dp/no-openssl"
    ref = repository + ":1"
    load_image(dockerd, tmp_path, ref)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    out = tmp_path / "out.tar"
    proc = run("process", push_uri(dockerd, ref), "tar://%s" % out, tmp=tmp_path,
               check=False, env={"PATH": str(empty)})
    assert "Error: dockerpush:// needs the openssl command" in proc.stderr
    assert not out.exists()
    assert_clean(dockerd, tmp_path, repository)
    rmi(dockerd, ref)


def test_podman_verifying_tls(podman_strict, skopeo, tmp_path):
    """E.2 #10: with no insecure entry for 127.0.0.1, podman verifies TLS; the push
    works because it carries tlsVerify=false."""
    repository = "example.com/occy-dp/strict"
    ref = repository + ":1"
    inspected = load_image(podman_strict, tmp_path, ref)
    out = tmp_path / "out.tar"
    run("process", push_uri(podman_strict, ref), "tar://%s" % out, tmp=tmp_path)
    _, config = validate_with_skopeo(skopeo, out, tmp_path)
    assert config["rootfs"]["diff_ids"] == inspected["RootFS"]["Layers"]
    assert_clean(podman_strict, tmp_path, repository)


def test_push_error_is_one_line(podman_blocked, tmp_path):
    """An `error` line in the daemon's push stream: one Error line, tag and temp files
    gone, no output."""
    repository = "example.com/occy-dp/blocked"
    ref = repository + ":1"
    load_image(podman_blocked, tmp_path, ref)
    out = tmp_path / "out.tar"
    proc = run("process", push_uri(podman_blocked, ref), "tar://%s" % out, tmp=tmp_path,
               check=False)
    assert "Error: Docker daemon could not push the image to the embedded registry" \
        in proc.stderr
    assert "blocked" in proc.stderr
    assert not out.exists()
    assert_clean(podman_blocked, tmp_path, repository)
    assert podman_blocked.inspect_image(ref)["RepoTags"] == [ref]


def _blob(registry, repo, digest):
    with urllib.request.urlopen("http://%s/v2/%s/blobs/%s" % (registry.url, repo, digest)) \
            as response:
        return response.read()


def test_unfiltered_push_to_a_registry_is_what_the_daemon_pushes(dockerd, registry, tmp_path):
    """dockerpush:// -> registry:// copies the daemon's push as it is: the daemon's own
    `docker push` of the same image to the same registry gives the same manifest
    digest, and no layer is decompressed on the way (the Summary's uncompressed size
    comes from the gzip trailers)."""
    ref = "example.com/occy-dp/exact:1"
    load_image(dockerd, tmp_path, ref)
    direct = "%s/occy-dp/direct:1" % registry.url
    dockerd.docker("tag", ref, direct)
    dockerd.docker("push", direct)
    proc = run("--insecure", "process", push_uri(dockerd, ref),
               "registry://%s/occy-dp/through:1" % registry.url, tmp=tmp_path)
    mine = peers.skopeo("inspect", "--raw", "--tls-verify=false",
                        "docker://%s/occy-dp/through:1" % registry.url).stdout
    theirs = peers.skopeo("inspect", "--raw", "--tls-verify=false",
                          "docker://" + direct).stdout
    assert hashlib.sha256(mine.encode()).hexdigest() == \
        hashlib.sha256(theirs.encode()).hexdigest()
    total = sum(len(gzip.decompress(_blob(registry, "occy-dp/through", layer["digest"])))
                for layer in json.loads(mine)["layers"])
    assert "Summary: 3 layers, %s," % format_size(total) in proc.stderr, proc.stderr
    rmi(dockerd, direct)
    rmi(dockerd, ref)
