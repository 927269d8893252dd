"""`occystrap proxy` and the embedded registry (occystrap/server/).

The protocol tests run the registry in-process and speak HTTP to it with http.client.
The proxy tests start `python -m occystrap proxy` as a user would, in front of a real
docker-registry, and push to it with skopeo and a real dockerd; pull-through is tested
with a second docker-registry as the upstream and `docker pull` through the proxy.
"""
import concurrent.futures
import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from occystrap.api import copy
from occystrap.server import RegistryHTTPError, RegistryServer
from occystrap.transports.pushed import PushedImage
from occystrap.transports import open_sink
from occystrap.uri import parse_uri
from tests import imagebuilder as ib
from tests import peers
from tests.faultproxy import FaultProxy
from tests.cli import REPO, occystrap
from tests import multiarch as ma
from tests.multiarch import multiarch_fixture  # noqa: F401  (fixture `multiarch`)

pytestmark = pytest.mark.functional

READY_PUSH = "Ready to receive pushes. Press Ctrl+C to stop."
READY_PULL = "Ready for pushes and pulls."
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


# -- helpers ---------------------------------------------------------------------------

def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ProxyProcess:
    """`python -m occystrap --insecure proxy ...` on a free port, stderr collected."""

    def __init__(self, downstream, *extra, filters=("normalize-timestamps",), options=()):
        self.port = peers.free_port()
        args = [sys.executable, "-m", "occystrap", "--insecure", *options, "proxy",
                "-l", "127.0.0.1:%d" % self.port, "-d", downstream]
        for spec in filters:
            args += ["-f", spec]
        self.args = args + list(extra)
        self.lines = []
        self.proc = None
        self._reader = None
        self._ready = threading.Event()

    @property
    def url(self):
        return "127.0.0.1:%d" % self.port

    @property
    def stderr(self):
        return "".join(self.lines)

    def start(self, timeout=30.0):
        env = dict(os.environ)
        env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env, cwd=REPO)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout):
            self.stop(signal.SIGKILL)
            raise AssertionError("proxy not ready:\n" + self.stderr)
        if self.proc.poll() is not None:
            self.stop()
            raise AssertionError("proxy exited at start:\n" + self.stderr)
        return self

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            if READY_PUSH in line or READY_PULL in line:
                self._ready.set()
        self._ready.set()

    def stop(self, sig=signal.SIGTERM, timeout=60.0):
        """Signal it, wait for the exit; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(10)
        self.proc.stderr.close()
        code, self.proc = self.proc.returncode, None
        return code


@pytest.fixture
def proxies():
    """start(downstream, *extra, filters=...) -> a started ProxyProcess; all stopped at
    the end."""
    started = []

    def start(downstream, *extra, **kwargs):
        proxy = ProxyProcess(downstream, *extra, **kwargs).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop(signal.SIGKILL)


def build(tmp_path, name, layers=None, repotag="example.com/occy/app:1"):
    path = tmp_path / name
    info = ib.build_image(path, layers or ib.sample_layers(), repotag=repotag)
    return path, info


def unique_layer(tag):
    """A small layer whose content (and so digest) is unique to this test."""
    return ib.layer([("dir", "data"),
                     ("file", "data/id", ("%s %s\n" % (tag, time.time())).encode(),
                      {"mtime": ib.EPOCH + 3600})])


def pull_back(registry_url, repository, tmp_path, name="back.tar"):
    """Fetch registry_url/repository with occystrap into a tarball; return its path."""
    back = tmp_path / name
    occystrap("--insecure", "process", "registry://%s/%s" % (registry_url, repository),
              "tar://%s" % back, check=True)
    return back


def layer_mtimes(tar_path):
    """Every member mtime of every layer of a docker-save tarball."""
    mtimes = set()
    with tarfile.open(tar_path) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                mtimes.update(member.mtime for member in inner.getmembers())
    return mtimes


def assert_normalized(registry_url, repository, tmp_path, name="back.tar"):
    back = pull_back(registry_url, repository, tmp_path, name)
    assert layer_mtimes(back) == {0}
    occystrap("check", "tar://%s" % back, check=True)
    return back


def raw_request(port, request_bytes):
    """Send raw bytes; return (status line, header lines) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_bytes)
        data = b""
        while b"\r\n\r\n" not in data:
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    head = data.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    return lines[0], lines[1:]


# -- the embedded registry, in-process ----------------------------------------------------

@pytest.fixture
def server(tmp_path):
    received = []

    def on_manifest(name, reference, body, media_type):
        received.append((name, reference, body, media_type))
        if reference == "refuse":
            raise RegistryHTTPError(409, "DENIED", "refused by the hook")

    srv = RegistryServer(str(tmp_path), on_manifest=on_manifest).start()
    srv.received = received
    try:
        yield srv
    finally:
        srv.close()
        assert not os.path.exists(srv.store.root)


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def __call__(self, method, path, body=None, headers=None, encode_chunked=False):
        self.conn.request(method, path, body=body, headers=headers or {},
                          encode_chunked=encode_chunked)
        response = self.conn.getresponse()
        data = response.read()
        return response, data

    def close(self):
        self.conn.close()


@pytest.fixture
def client(server):
    c = Client(server.port)
    yield c
    c.close()


def push_blob(client, name, data):
    response, _ = client("POST", "/v2/%s/blobs/uploads/" % name)
    assert response.status == 202
    location = response.getheader("Location")
    response, _ = client("PUT", "%s?digest=%s" % (location, sha(data)), body=data)
    assert response.status == 201, response.status
    return sha(data)


def test_base_endpoint_and_errors(client):
    response, body = client("GET", "/v2/")
    assert response.status == 200 and json.loads(body) == {}
    assert response.getheader("Docker-Distribution-API-Version") == "registry/2.0"
    response, body = client("GET", "/v2/x/blobs/sha256:" + "0" * 64)
    assert response.status == 404
    assert json.loads(body)["errors"][0]["code"] == "BLOB_UNKNOWN"
    response, body = client("GET", "/v2/Bad_Name/manifests/1")
    assert response.status == 400
    assert json.loads(body)["errors"][0]["code"] == "NAME_INVALID"
    response, body = client("GET", "/v2/x/blobs/md5:abc")
    assert response.status == 400
    response, body = client("GET", "/nothing")
    assert response.status == 404


def test_chunked_upload_ranges_and_digest_check(client, server):
    data = os.urandom(3 << 20) + b"tail"
    response, _ = client("POST", "/v2/a/b/blobs/uploads/")
    assert response.status == 202
    assert response.getheader("Range") == "0-0"
    location = response.getheader("Location")
    assert location.startswith("/v2/a/b/blobs/uploads/")
    assert response.getheader("Docker-Upload-UUID") == location.rsplit("/", 1)[1]
    first, rest = data[:1 << 20], data[1 << 20:]
    # chunked transfer encoding, no Content-Range (docker push does this)
    response, _ = client("PATCH", location, body=iter([first[:1000], first[1000:]]),
                         encode_chunked=True)
    assert response.status == 202
    assert response.getheader("Range") == "0-%d" % (len(first) - 1)
    # a range that does not continue the upload
    response, body = client("PATCH", location, body=rest,
                            headers={"Content-Range": "5-%d" % (len(rest) + 4)})
    assert response.status == 416
    assert response.getheader("Range") == "0-%d" % (len(first) - 1)
    response, _ = client("GET", location)
    assert response.status == 204
    response, _ = client("PATCH", location, body=rest, headers={
        "Content-Range": "%d-%d" % (len(first), len(data) - 1)})
    assert response.status == 202
    # wrong digest: 400 and the upload is gone
    response, body = client("PUT", location + "?digest=" + sha(b"other"), body=b"")
    assert response.status == 400
    assert json.loads(body)["errors"][0]["code"] == "DIGEST_INVALID"
    response, _ = client("PATCH", location, body=b"x")
    assert response.status == 404
    # again, properly
    digest = push_blob(client, "a/b", data)
    response, _ = client("HEAD", "/v2/a/b/blobs/" + digest)
    assert response.status == 200
    assert int(response.getheader("Content-Length")) == len(data)
    assert response.getheader("Docker-Content-Digest") == digest
    response, body = client("GET", "/v2/other/blobs/" + digest, headers={"Range": "bytes=10-19"})
    assert response.status == 206 and body == data[10:20]
    response, body = client("GET", "/v2/other/blobs/" + digest)
    assert response.status == 200 and body == data
    # blobs are files in the store, not in memory
    assert os.path.getsize(server.store.path(digest)) == len(data)


def test_monolithic_upload_and_mount(client):
    data = b"monolithic blob"
    response, _ = client("POST", "/v2/m/blobs/uploads/?digest=" + sha(data), body=data)
    assert response.status == 201
    assert response.getheader("Docker-Content-Digest") == sha(data)
    assert response.getheader("Location") == "/v2/m/blobs/" + sha(data)
    response, _ = client("POST", "/v2/n/blobs/uploads/?digest=" + sha(b"x"), body=data)
    assert response.status == 400
    response, _ = client("POST", "/v2/n/blobs/uploads/?mount=%s&from=m" % sha(data))
    assert response.status == 201
    assert response.getheader("Docker-Content-Digest") == sha(data)
    response, _ = client("POST", "/v2/n/blobs/uploads/?mount=%s&from=m" % sha(b"unknown"))
    assert response.status == 202 and response.getheader("Location")


def _image(client, name):
    layer = ib.compress(ib.layer([("file", "hello", b"hi\n")]), "gzip")
    diff_id = sha(ib.layer([("file", "hello", b"hi\n")]))
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    layer_digest = push_blob(client, name, layer)
    config_digest = push_blob(client, name, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": len(config), "digest": config_digest},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": len(layer), "digest": layer_digest}]}).encode()
    return manifest, diff_id


def test_manifest_push_lookup_and_pushed_image(client, server, tmp_path):
    manifest, diff_id = _image(client, "img")
    response, _ = client("PUT", "/v2/img/manifests/v1", body=manifest,
                         headers={"Content-Type": DOCKER_MANIFEST})
    assert response.status == 201
    assert response.getheader("Docker-Content-Digest") == sha(manifest)
    assert server.received[0][:2] == ("img", "v1")
    for ref in ("v1", sha(manifest)):
        response, body = client("GET", "/v2/img/manifests/" + ref)
        assert response.status == 200 and body == manifest
        assert response.getheader("Content-Type") == DOCKER_MANIFEST
        response, body = client("HEAD", "/v2/img/manifests/" + ref)
        assert response.status == 200 and body == b""
        assert int(response.getheader("Content-Length")) == len(manifest)
    response, body = client("GET", "/v2/img/tags/list")
    assert json.loads(body) == {"name": "img", "tags": ["v1"]}
    # the hook may refuse
    response, body = client("PUT", "/v2/img/manifests/refuse", body=manifest)
    assert response.status == 409
    # PushedImage runs through api.copy like any source
    source = PushedImage(server, "img", manifest, DOCKER_MANIFEST, "v1")
    out = tmp_path / "out.tar"
    report = copy(source, open_sink(parse_uri("tar://%s" % out)), [])
    assert report.layers == 1 and report.results[0].diff_id == diff_id
    occystrap("check", "tar://%s" % out, check=True)


def test_manifest_refusals(client):
    manifest, _ = _image(client, "img")
    index = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": []}).encode()
    response, body = client("PUT", "/v2/img/manifests/list", body=index,
                            headers={"Content-Type": "application/vnd.oci.image.index.v1+json"})
    assert response.status == 400
    assert "manifest lists" in json.loads(body)["errors"][0]["message"]
    missing = json.loads(manifest)
    missing["layers"][0]["digest"] = sha(b"never pushed")
    response, body = client("PUT", "/v2/img/manifests/x", body=json.dumps(missing).encode())
    assert response.status == 400
    assert json.loads(body)["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    response, body = client("PUT", "/v2/img/manifests/" + sha(b"other"), body=manifest)
    assert response.status == 400
    response, body = client("PUT", "/v2/img/manifests/x", body=b"not json")
    assert response.status == 400


@pytest.mark.parametrize("body, reason", [
    (b"[" * 100000 + b"]" * 100000, "nested more than 100 levels deep"),
    (b'{"schemaVersion": 2, "config": {"a": ' + b"[" * 200 + b"]" * 200 + b"}}",
     "nested more than 100 levels deep"),
    (b'{"schemaVersion": NaN}', "NaN is not a JSON value"),
    (b"\xff\xfe", "not valid JSON"),
], ids=["deep", "deep-config", "nan", "not-utf8"])
def test_untrusted_manifest_json_is_a_clean_400(client, body, reason):
    response, data = client("PUT", "/v2/img/manifests/deep", body=body,
                            headers={"Content-Type": DOCKER_MANIFEST})
    assert response.status == 400
    error = json.loads(data)["errors"][0]
    assert error["code"] == "MANIFEST_INVALID" and reason in error["message"]
    response, _ = client("GET", "/v2/")          # the server is still answering
    assert response.status == 200


def test_deeply_nested_manifest_through_the_proxy(registry, proxies):
    proxy = proxies(registry.url)
    c = Client(proxy.port)
    try:
        response, data = c("PUT", "/v2/occy/deep/manifests/1",
                           body=b"[" * 100000 + b"]" * 100000,
                           headers={"Content-Type": DOCKER_MANIFEST})
    finally:
        c.close()
    assert response.status == 400
    assert json.loads(data)["errors"][0]["code"] == "MANIFEST_INVALID"
    assert proxy.stop() == 0
    assert "Traceback" not in proxy.stderr


def test_response_headers_are_sanitized(tmp_path):
    """A value from a hook (or anywhere) with CR/LF cannot add a header (CWE-113)."""
    def lookup(name, reference, accept, method):
        return b"{}", "application/json\r\nX-Injected: yes"

    with RegistryServer(str(tmp_path), manifest_lookup=lookup) as srv:
        status, headers = raw_request(srv.port, b"GET /v2/x/manifests/1 HTTP/1.1\r\n"
                                                b"Host: x\r\nConnection: close\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 200")
    assert not any(line.lower().startswith(b"x-injected") for line in headers)
    assert b"Content-Type: application/jsonX-Injected: yes" in headers


def test_https(tmp_path):
    """Given a certificate and key it serves HTTPS (dockerpush:// uses it this way)."""
    if not peers.have("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    with RegistryServer(str(tmp_path), certfile=str(cert), keyfile=str(key)) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=context, timeout=10)
        try:
            for _ in range(2):                      # keep-alive over TLS
                conn.request("GET", "/v2/")
                response = conn.getresponse()
                assert response.status == 200 and response.read() == b"{}"
        finally:
            conn.close()


# -- the proxy, as a process ---------------------------------------------------------------

def test_bad_listen_port():
    proc = occystrap("proxy", "-l", "127.0.0.1:http", "-d", "127.0.0.1:1", check=False)
    assert "Error: invalid port: http" in proc.stderr


def test_busy_listen_port_names_the_address(registry):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = occystrap("--insecure", "proxy", "-l", "127.0.0.1:%d" % port,
                         "-d", registry.url, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "Error: cannot listen on 127.0.0.1:%d: Address already in use" % port)
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_idle(registry, proxies, sig, tmp_path):
    proxy = proxies(registry.url, options=("--temp-dir", str(tmp_path)))
    assert READY_PUSH in proxy.stderr
    assert [name.startswith("occystrap-blobs-") for name in os.listdir(tmp_path)] == [True]
    assert proxy.stop(sig) == 0
    assert ("Proxy stopped. Pushed 0 images (0 failed). Pulled 0 images "
            "(0 cache hits, 0 misses).") in proxy.stderr
    assert os.listdir(tmp_path) == []           # the received-blob store is removed


def test_skopeo_push_through_proxy(registry, proxies, skopeo, tmp_path):
    path, info = build(tmp_path, "in.tar", ib.sample_layers() + [unique_layer("skopeo")])
    proxy = proxies(registry.url)
    skopeo("copy", "--dest-tls-verify=false", "docker-archive:%s" % path,
           "docker://%s/occy/skopeo:1" % proxy.url)
    assert_normalized(registry.url, "occy/skopeo:1", tmp_path)
    config = skopeo.inspect("docker://%s/occy/skopeo:1" % registry.url, config=True,
                            tls_verify=False)
    assert len(config["rootfs"]["diff_ids"]) == 4
    assert config["rootfs"]["diff_ids"] != info["diff_ids"]
    # push-only mode serves the pushed manifest bytes for the client's checks
    raw = skopeo("inspect", "--raw", "--tls-verify=false",
                 "docker://%s/occy/skopeo:1" % proxy.url).stdout
    assert json.loads(raw)["layers"]
    assert proxy.stop() == 0
    assert "Pushed 1 images (0 failed)" in proxy.stderr


def test_docker_push_through_proxy(registry, proxies, dockerd, tmp_path):
    repotag = "example.com/occy/dockerpush:1"
    path, info = build(tmp_path, "in.tar", ib.sample_layers() + [unique_layer("docker")],
                       repotag=repotag)
    dockerd.load(path)
    proxy = proxies(registry.url)
    target = "%s/occy/dk:1" % proxy.url
    dockerd.docker("tag", repotag, target)
    try:
        out = dockerd.docker("push", target).stdout
        assert "digest: sha256:" in out
        back = assert_normalized(registry.url, "occy/dk:1", tmp_path)
        with tarfile.open(back) as outer:
            manifest = json.load(outer.extractfile("manifest.json"))
        assert len(manifest[0]["Layers"]) == 4
    finally:
        dockerd.docker("rmi", target, repotag, check=False)
    assert proxy.stop() == 0
    assert "Pushed 1 images (0 failed)" in proxy.stderr


def test_sigterm_during_a_forward_loses_nothing(registry, proxies, skopeo, tmp_path):
    """SIGTERM while a pushed image is still being forwarded: the proxy stops taking
    connections, finishes the forward, and only then exits; the client's push succeeds
    and the downstream has the filtered image."""
    path, _info = build(tmp_path, "in.tar", ib.sample_layers() + [unique_layer("sigterm")])
    with FaultProxy(registry.url) as slow:
        slow.add("PUT", r"/manifests/", 3.0)         # the forward's last step is slow
        proxy = proxies(slow.address)
        client = subprocess.Popen(
            ["skopeo", "copy", "--dest-tls-verify=false", "docker-archive:%s" % path,
             "docker://%s/occy/sigterm:1" % proxy.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while ("PUT", True) not in {(m, "/manifests/" in p) for m, p in slow.hits}:
            assert time.monotonic() < deadline and client.poll() is None, client.stderr
            time.sleep(0.05)
        proxy.proc.send_signal(signal.SIGTERM)
        _out, err = client.communicate(timeout=60)
        assert client.returncode == 0, err
        assert proxy.proc.wait(60) == 0         # exits by itself after the one SIGTERM
        proxy.stop()
    assert "Waiting for 1 image(s) in progress" in proxy.stderr
    assert "Pushed 1 images (0 failed)" in proxy.stderr
    assert_normalized(registry.url, "occy/sigterm:1", tmp_path)


def test_concurrent_pushes_share_base_layers(registry, proxies, dockerd, tmp_path):
    base = ib.sample_layers()[0]
    images = []
    for tag in ("one", "two"):
        repotag = "example.com/occy/conc-%s:1" % tag
        path, _ = build(tmp_path, "%s.tar" % tag, [base, unique_layer(tag)], repotag=repotag)
        dockerd.load(path)
        images.append(repotag)
    proxy = proxies(registry.url, "-c", "2")
    targets = ["%s/occy/conc-%d:1" % (proxy.url, i) for i in range(2)]
    for repotag, target in zip(images, targets):
        dockerd.docker("tag", repotag, target)
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda t: dockerd.docker("push", t, check=False), targets))
        for result in results:
            assert result.returncode == 0, result.stderr
        configs = [json.loads(peers.skopeo("inspect", "--config", "--tls-verify=false",
                                           "docker://%s/occy/conc-%d:1" % (registry.url, i))
                              .stdout) for i in range(2)]
        assert configs[0]["rootfs"]["diff_ids"][0] == configs[1]["rootfs"]["diff_ids"][0]
        assert configs[0]["rootfs"]["diff_ids"][1] != configs[1]["rootfs"]["diff_ids"][1]
        for i in range(2):
            assert_normalized(registry.url, "occy/conc-%d:1" % i, tmp_path, "b%d.tar" % i)
    finally:
        dockerd.docker("rmi", *targets, *images, check=False)
    assert proxy.stop() == 0
    assert "Pushed 2 images (0 failed)" in proxy.stderr


def test_failed_push_is_an_error_for_the_client(proxies, skopeo, tmp_path):
    path, _ = build(tmp_path, "in.tar", [unique_layer("fail")])
    proxy = proxies("127.0.0.1:%d" % peers.free_port(), options=("--retries", "0"))
    result = skopeo("copy", "--dest-tls-verify=false", "docker-archive:%s" % path,
                    "docker://%s/occy/fail:1" % proxy.url, check=False)
    assert result.returncode != 0
    assert proxy.stop() == 0
    assert "Push of occy/fail:1 failed" in proxy.stderr
    assert "Pushed 0 images (1 failed)" in proxy.stderr


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_manifest_is_answered_413(registry, proxies, chunked):
    """A 5 MiB manifest (the limit is 4 MiB) gets 413 SIZE_INVALID, not a wait for
    body bytes already read; the client's socket timeout fails the test if the proxy
    blocks.  With Content-Length the rest is drained, so the connection stays usable."""
    proxy = proxies(registry.url)
    body = b" " * (5 << 20)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=20)
    try:
        headers = {"Content-Type": DOCKER_MANIFEST}
        if chunked:
            conn.request("PUT", "/v2/occy/big/manifests/1", body=iter([body]),
                         headers=headers, encode_chunked=True)
        else:
            conn.request("PUT", "/v2/occy/big/manifests/1", body=body, headers=headers)
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 413
        assert answer["errors"][0]["code"] == "SIZE_INVALID"
        if not chunked:
            conn.request("GET", "/v2/")
            again = conn.getresponse()
            again.read()
            assert again.status == 200
    finally:
        conn.close()
    assert proxy.stop() == 0


def test_downstream_prefix(registry, proxies, skopeo, tmp_path):
    path, _ = build(tmp_path, "in.tar", [unique_layer("prefix")])
    proxy = proxies(registry.url + "/mirror/team")
    skopeo("copy", "--dest-tls-verify=false", "docker-archive:%s" % path,
           "docker://%s/occy/pfx:2" % proxy.url)
    assert_normalized(registry.url, "mirror/team/occy/pfx:2", tmp_path)
    missing = skopeo("inspect", "--tls-verify=false",
                     "docker://%s/occy/pfx:2" % registry.url, check=False)
    assert missing.returncode != 0


def test_pull_through_checks_the_downstream_manifest(registry, proxies, tmp_path):
    """A downstream manifest that does not match its Docker-Content-Digest is not
    served (502 naming it); once the downstream answers right it is."""
    path, _ = build(tmp_path, "in.tar", [unique_layer("digest-check")])
    occystrap("--insecure", "process", "tar://%s" % path,
              "registry://%s/occy/dc:1" % registry.url, check=True)
    with FaultProxy(registry.url) as downstream:
        downstream.add("GET", r"/manifests/1$", ("header", "Docker-Content-Digest",
                                                 sha(b"something else")))
        proxy = proxies(downstream.address, "-u", "127.0.0.1:%d" % peers.free_port())
        client = Client(proxy.port)
        try:
            headers = {"Accept": DOCKER_MANIFEST}
            response, body = client("GET", "/v2/occy/dc/manifests/1", headers=headers)
            assert response.status == 502
            assert ("manifest of %s/occy/dc:1 does not match the registry's "
                    "Docker-Content-Digest" % downstream.address
                    in json.loads(body)["errors"][0]["message"])
            assert downstream.fired() == 1
            response, body = client("GET", "/v2/occy/dc/manifests/1", headers=headers)
            assert response.status == 200
            assert response.getheader("Docker-Content-Digest") == sha(body)
        finally:
            client.close()
        assert proxy.stop() == 0


def test_pull_through(registry, proxies, dockerd, skopeo, tmp_path):
    with peers.Registry() as upstream:
        path, info = build(tmp_path, "in.tar", ib.sample_layers() + [unique_layer("pull")])
        occystrap("--insecure", "process", "tar://%s" % path,
                  "registry://%s/occy/pt:1" % upstream.url, check=True)
        proxy = proxies(registry.url, "-u", upstream.url)
        assert READY_PULL in proxy.stderr
        target = "%s/occy/pt:1" % proxy.url
        try:
            dockerd.docker("pull", target)
            served = dockerd.inspect_image(target)["RootFS"]["Layers"]
            config = skopeo.inspect("docker://%s/occy/pt:1" % registry.url, config=True,
                                    tls_verify=False)
            assert served == config["rootfs"]["diff_ids"]
            assert served != info["diff_ids"]
            assert_normalized(registry.url, "occy/pt:1", tmp_path)
            dockerd.docker("rmi", target)
            dockerd.docker("pull", target)          # now a cache hit
            assert dockerd.inspect_image(target)["RootFS"]["Layers"] == served
            # pushing the pulled (filtered) image back: the proxy must not tell the
            # daemon it has blobs it only could fetch from the downstream
            again = "%s/occy/pt:again" % proxy.url
            dockerd.docker("tag", target, again)
            dockerd.docker("push", again)
            dockerd.docker("rmi", again)
            # an image the upstream does not have
            missing = dockerd.docker("pull", "%s/occy/nothere:1" % proxy.url, check=False)
            assert missing.returncode != 0
        finally:
            dockerd.docker("rmi", target, check=False)
        assert proxy.stop() == 0
    stopped = [line for line in proxy.lines if "Proxy stopped." in line]
    assert stopped, proxy.stderr
    assert "Pushed 1 images (0 failed). Pulled 2 images (1 cache hits, 1 misses)." \
        in stopped[0], proxy.stderr


def test_pull_through_from_a_tls_upstream(registry, registry_tls, proxies, tmp_path):
    """The downstream is plain HTTP (global --insecure), the upstream TLS with its own CA:
    `https://` on -u and --upstream-ca-file decide for the upstream alone."""
    path, _ = build(tmp_path, "in.tar", [unique_layer("tls-upstream")])
    occystrap("--ca-file", registry_tls.ca_file, "process", "tar://%s" % path,
              "registry://%s/occy/tlsup:1" % registry_tls.url, check=True)
    proxy = proxies(registry.url, "-u", "https://" + registry_tls.url,
                    "--upstream-ca-file", registry_tls.ca_file)
    assert_normalized(proxy.url, "occy/tlsup:1", tmp_path)
    assert_normalized(registry.url, "occy/tlsup:1", tmp_path, "downstream.tar")
    assert proxy.stop() == 0
    # Without the scheme the global --insecure still reaches the upstream (0.4.17), and
    # without the CA the upstream's certificate is not trusted: both fail the pull.
    for upstream in (["-u", registry_tls.url, "--upstream-ca-file", registry_tls.ca_file],
                     ["-u", "https://" + registry_tls.url]):
        proxy = proxies(registry.url, *upstream)
        failed = occystrap("--insecure", "--retries", "0", "process",
                           "registry://%s/occy/tlsup:2" % proxy.url,
                           "tar://%s" % (tmp_path / "no.tar"), check=False)
        assert "502" in failed.stderr or "pull-through" in failed.stderr, failed.stderr
        assert proxy.stop() == 0
        assert ("HTTP request to an HTTPS server" if upstream[1] == registry_tls.url
                else "certificate verification failed") in proxy.stderr, proxy.stderr


def test_upstream_scheme_and_flags():
    from occystrap.errors import URIParseError
    from occystrap.proxy import Proxy
    options = {"insecure": True}

    def plain_http(upstream, *flags):
        return Proxy("127.0.0.1:5000", (), options, upstream=upstream,
                     upstream_insecure="--upstream-insecure" in flags
                     ).upstream_options["insecure"]

    assert plain_http("https://u:p@up.example") is False
    assert plain_http("http://up.example") is True
    assert plain_http("up.example") is True                 # the global --insecure
    assert Proxy("127.0.0.1:5000", (), {}, upstream="up.example",
                 upstream_insecure=True).upstream_options["insecure"] is True
    with pytest.raises(URIParseError):
        plain_http("https://up.example", "--upstream-insecure")
    with pytest.raises(URIParseError):
        plain_http("ftp://up.example")


def test_proxy_headers_never_carry_crlf(registry, proxies):
    proxy = proxies(registry.url)
    requests = [
        b"GET /v2/evil%0d%0aX-Injected:%20yes/manifests/1 HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n",
        b"GET /v2/ok/manifests/t%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n\r\n",
        b"POST /v2/evil%0aX-Injected:%20yes/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
        b"PATCH /v2/ok/blobs/uploads/x%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 0\r\nConnection: close\r\n\r\n",
        b"PUT /v2/ok/manifests/a%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}",
    ]
    for request in requests:
        status, headers = raw_request(proxy.port, request)
        assert status.startswith(b"HTTP/1.1 4"), (request, status)
        assert not any(line.lower().startswith(b"x-injected") for line in headers), headers
    assert proxy.stop() == 0


# -- multi-platform images through the proxy --------------------------------------------

def _index_children(registry_url, repository, tag):
    """(index, [child manifests]) of registry_url/repository:tag, read back raw."""
    index = json.loads(skopeo_raw("docker://%s/%s:%s" % (registry_url, repository, tag)))
    children = [json.loads(skopeo_raw("docker://%s/%s@%s" % (registry_url, repository,
                                                               entry["digest"])))
                for entry in index["manifests"]]
    return index, children


def skopeo_raw(ref):
    return peers.skopeo("inspect", "--raw", "--tls-verify=false", ref).stdout


@pytest.mark.parametrize("kind", ["oci", "v2s2"])
def test_index_push_through_proxy(registry, proxies, multiarch, tmp_path, kind):
    """`skopeo copy --all` pushes the children by digest, then the index by tag: the
    proxy filters every child and forwards a new index of the same kind."""
    proxy = proxies(registry.url)
    target = "occy/multi-%s" % kind
    peers.skopeo("copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                 multiarch.docker_ref(kind), "docker://%s/%s:1" % (proxy.url, target))
    source, source_children = _index_children(registry.url, multiarch.repo, kind)
    index, children = _index_children(registry.url, target, "1")
    assert index["mediaType"] == source["mediaType"]
    assert [e["platform"] for e in index["manifests"]] == \
        [e["platform"] for e in source["manifests"]]
    for old, new in zip(source_children, children):
        assert new["mediaType"] == old["mediaType"]
        assert {layer["digest"] for layer in new["layers"]}.isdisjoint(
            layer["digest"] for layer in old["layers"])
    assert_normalized(registry.url, target + ":1", tmp_path)
    peers.skopeo("copy", "--all", "--src-tls-verify=false",
                 "docker://%s/%s:1" % (registry.url, target), "oci:%s:x" % (tmp_path / "o"))
    assert proxy.stop() == 0
    assert "Pushed 1 images (0 failed)" in proxy.stderr


def test_pull_through_serves_an_index(proxies, multiarch, tmp_path):
    with peers.Registry() as downstream:
        proxy = proxies(downstream.url, "-u", multiarch.url)
        assert READY_PULL in proxy.stderr
        peers.skopeo("copy", "--all", "--src-tls-verify=false",
                     "docker://%s/%s:oci" % (proxy.url, multiarch.repo),
                     "oci:%s:x" % (tmp_path / "pulled"))
        index, children = _index_children(downstream.url, multiarch.repo, "oci")
        assert [e["platform"]["architecture"] for e in index["manifests"]] == \
            ["amd64", "arm64"]
        _source, source_children = _index_children(multiarch.url, multiarch.repo, "oci")
        assert children[0]["layers"] != source_children[0]["layers"]    # filtered
        assert_normalized(downstream.url, multiarch.repo + ":oci", tmp_path)
        assert proxy.stop() == 0


def test_buildah_manifest_push_all_through_proxy(registry, proxies, multiarch, tmp_path):
    """`buildah manifest push --all` of a list made from the index: the proxy forwards
    a filtered OCI index with both platforms."""
    buildah = ma.Buildah(str(tmp_path / "buildah"))
    buildah("manifest", "create", "localhost/proxied:1")
    buildah("manifest", "add", "--all", "--tls-verify=false", "localhost/proxied:1",
            multiarch.docker_ref("oci"))
    proxy = proxies(registry.url)
    try:
        buildah("manifest", "push", "--all", "--format", "oci", "--tls-verify=false",
                "localhost/proxied:1", "docker://%s/occy/buildah-multi:1" % proxy.url)
    finally:
        peers.unmount_under(str(tmp_path / "buildah"))
    index, children = _index_children(registry.url, "occy/buildah-multi", "1")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [e["platform"]["architecture"] for e in index["manifests"]] == ["amd64", "arm64"]
    _source, source_children = _index_children(registry.url, multiarch.repo, "oci")
    assert [c["layers"] for c in children] != [c["layers"] for c in source_children]
    assert_normalized(registry.url, "occy/buildah-multi:1", tmp_path)
    assert proxy.stop() == 0
