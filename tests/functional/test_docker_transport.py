"""docker:// in and out against a real dockerd and podman's Docker-compatible service.

Every test passes its own `?socket=` or $DOCKER_HOST (never /var/run/docker.sock) and its own
--temp-dir, which must be empty again afterwards.  Image names are unique per test
and fully qualified, because podman adds `localhost/` to short names.
"""
import http.server
import json
import os
import shutil
import socket
import socketserver
import tarfile
import threading

import pytest

from occystrap.errors import InputError
from occystrap.unixhttp import UnixHTTPClient
from tests import imagebuilder as ib
from tests.cli import occystrap

pytestmark = pytest.mark.functional

DAEMONS = ["dockerd", "podman"]


@pytest.fixture(params=DAEMONS)
def daemon(request):
    return request.getfixturevalue(request.param)


def docker_uri(peer, ref):
    return "docker://%s?socket=%s" % (ref, peer.socket)


def run(*args, tmp, check=True):
    """occystrap with its own --temp-dir under tmp (see assert_no_temp_files)."""
    temp = tmp / "occy-tmp"
    temp.mkdir(exist_ok=True)
    return occystrap("--temp-dir", temp, *args, check=check)


def assert_no_temp_files(tmp):
    assert os.listdir(tmp / "occy-tmp") == []


def tags_of(peer, ref):
    proc = peer.docker("image", "inspect", ref, check=False)
    if proc.returncode:
        return None
    return json.loads(proc.stdout)[0]["RepoTags"]


def rmi(peer, *refs):
    for ref in refs:
        peer.docker("rmi", ref, check=False)


def read_tarball(path):
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        config = json.load(tar.extractfile(manifest["Config"]))
    return manifest, config


# -- tar:// -> docker:// -----------------------------------------------------------------

def test_tar_to_docker_uses_destination_name(daemon, tmp_path):
    src = tmp_path / "in.tar"
    ib.build_image(src, ib.sample_layers(), repotag="example.com/occy/source:7")
    dest = "example.com/x/y:2"
    proc = run("process", "tar://%s" % src, docker_uri(daemon, dest),
               "-f", "normalize-timestamps", tmp=tmp_path)
    assert proc.stderr.strip().endswith("verified OK")
    assert_no_temp_files(tmp_path)
    # the same copy to tar:// gives the config digest the daemon must now report
    out = tmp_path / "same.tar"
    occystrap("process", "tar://%s" % src, "tar://%s" % out, "-f", "normalize-timestamps",
              check=True)
    manifest, config = read_tarball(out)
    loaded = daemon.inspect_image(dest)
    assert loaded["Id"] == "sha256:" + manifest["Config"][:-len(".json")]
    assert loaded["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
    assert dest in loaded["RepoTags"]
    # 0.4.17 loaded it as source:7 (dockerd) or localhost/source:7 (podman)
    assert tags_of(daemon, "example.com/occy/source:7") is None
    assert not any(t.endswith("/source:7") or t == "source:7" for t in loaded["RepoTags"])
    rmi(daemon, dest)


def test_short_destination_name(daemon, tmp_path):
    """podman stores short names as localhost/NAME; both spellings work as a source."""
    src = tmp_path / "in.tar"
    info = ib.build_image(src, ib.sample_layers(), repotag="example.com/occy/short-src:1")
    run("process", "tar://%s" % src, docker_uri(daemon, "occyshort:1"), tmp=tmp_path)
    expected = ["localhost/occyshort:1"] if daemon.name == "podman" else ["occyshort:1"]
    assert tags_of(daemon, "occyshort:1") == expected
    for ref in ["occyshort:1"] + (["localhost/occyshort:1"] if daemon.name == "podman" else []):
        out = tmp_path / "back.tar"
        run("process", docker_uri(daemon, ref), "tar://%s" % out, tmp=tmp_path)
        manifest, config = read_tarball(out)
        assert manifest["RepoTags"] == [ref]
        assert "sha256:" + manifest["Config"][:-5] == info["config_digest"]
    assert_no_temp_files(tmp_path)
    rmi(daemon, "occyshort:1")


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_oci_layout_tar_to_docker_verifies(daemon, tmp_path, compression):
    """Docker 25+ save layout as input: verify compares the real config digest
    (0.4.17: `expected sha256:blobs/sha256/...`, E.2 #11)."""
    src = tmp_path / "oci.tar"
    info = ib.build_image(src, ib.sample_layers(), layout="oci", compression=compression,
                          repotag="example.com/occy/oci-src:1")
    dest = "example.com/occy-docker/oci-%s:25" % compression
    proc = run("process", "tar://%s" % src, docker_uri(daemon, dest), tmp=tmp_path)
    assert proc.stderr.strip().endswith("verified OK")
    assert daemon.inspect_image(dest)["Id"] == info["config_digest"]
    assert_no_temp_files(tmp_path)
    rmi(daemon, dest)


def _busybox_image(tmp_path):
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox-static is not installed")
    with open(busybox, "rb") as fileobj:
        binary = fileobj.read()
    base = ib.layer([("dir", "bin"), ("file", "bin/busybox", binary, {"mode": 0o755}),
                     ("symlink", "bin/sh", "busybox"), ("dir", "tmp", {"mode": 0o1777})])
    extra = ib.layer([("dir", "etc"), ("file", "etc/greeting", b"hello via docker://\n"),
                      ("file", "etc/secret.key", b"do not ship\n")])
    path = tmp_path / "busybox.tar"
    ib.build_image(path, [base, extra], layout="oci", compression="gzip",
                   repotag="example.com/occy/bb-src:1",
                   config={"config": {"Cmd": ["/bin/busybox", "cat", "/etc/greeting"],
                                      "Entrypoint": None, "WorkingDir": "/"}})
    return path


def test_loaded_image_runs(daemon, tmp_path):
    src = _busybox_image(tmp_path)
    dest = "example.com/occy-docker/busybox:run"
    run("process", "tar://%s" % src, docker_uri(daemon, dest),
        "-f", "exclude:pattern=*.key", "-f", "normalize-timestamps", tmp=tmp_path)
    if daemon.name == "podman":     # podman's CLI on the service's storage (see tar tests)
        run_cli = daemon.podman
        flags = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
    else:
        run_cli, flags = daemon.docker, []
    proc = run_cli("run", "--rm", "--pull=never", "--network", "none", *flags, dest)
    assert proc.stdout == "hello via docker://\n"
    missing = run_cli("run", "--rm", "--pull=never", "--network", "none", *flags, dest,
                      "/bin/busybox", "ls", "/etc/secret.key", check=False)
    assert missing.returncode != 0
    rmi(daemon, dest)


# -- docker:// -> tar:// and dir:// ------------------------------------------------------

@pytest.fixture
def loaded(daemon, tmp_path):
    """An image loaded into the daemon with its own CLI: (peer, ref, builder info)."""
    src = tmp_path / "to-load.tar"
    ref = "example.com/occy-docker/loaded-%s:3" % daemon.name
    info = ib.build_image(src, ib.sample_layers(), repotag=ref)
    daemon.load(src)
    yield daemon, ref, info
    rmi(daemon, ref)


def test_daemon_save_format(loaded, tmp_path):
    """The dialects differ: podman's save has symlinked layers (0.4.17 crashed on them)."""
    peer, ref, _info = loaded
    saved = tmp_path / "saved.tar"
    peer.docker("save", "-o", str(saved), ref)
    with tarfile.open(saved) as tar:
        symlinks = [m for m in tar.getmembers() if m.issym()]
    if peer.name == "podman":
        assert symlinks and all(m.name.endswith("/layer.tar") for m in symlinks)
    else:
        assert not symlinks


def test_docker_to_tar(loaded, tmp_path, skopeo):
    peer, ref, info = loaded
    out = tmp_path / "out.tar"
    proc = run("process", docker_uri(peer, ref), "tar://%s" % out, tmp=tmp_path)
    assert proc.stderr.strip().endswith("verified OK")
    assert_no_temp_files(tmp_path)
    assert skopeo.inspect("docker-archive:%s" % out)["Layers"] == info["diff_ids"]
    manifest, config = read_tarball(out)
    assert manifest["RepoTags"] == [ref]
    assert config["rootfs"]["diff_ids"] == info["diff_ids"]
    assert "sha256:" + manifest["Config"][:-5] == info["config_digest"]
    assert len(set(manifest["Layers"])) == 3
    occystrap("check", "tar://%s" % out, check=True)


def test_docker_to_dir(loaded, tmp_path):
    peer, ref, info = loaded
    out = tmp_path / "dir"
    run("process", docker_uri(peer, ref), "dir://%s" % out, tmp=tmp_path)
    assert_no_temp_files(tmp_path)
    with open(out / "manifest.json") as fileobj:
        manifest = json.load(fileobj)[0]
    # 0.4.17 collapsed podman's layers into one `layer.tar` (E.2 #10)
    assert manifest["Layers"] == ["%s/layer.tar" % d.split(":")[1] for d in info["diff_ids"]]
    for name in manifest["Layers"]:
        with tarfile.open(out / name) as layer:
            assert layer.getmembers()


def test_info_check_search(loaded, tmp_path):
    peer, ref, info = loaded
    proc = run("-O", "json", "info", docker_uri(peer, ref), tmp=tmp_path)
    data = json.loads(proc.stdout)
    assert (data["image"], data["tag"]) == tuple(ref.rsplit(":", 1))
    assert data["diff_ids"] == info["diff_ids"]
    proc = run("check", docker_uri(peer, ref), tmp=tmp_path)
    assert "0 error(s)" in proc.stdout
    proc = run("search", "--script-friendly", docker_uri(peer, ref), "app/*.py",
               tmp=tmp_path)
    paths = sorted(line.rsplit(":", 1)[1] for line in proc.stdout.splitlines())
    assert paths == ["app/main-link.py", "app/main.py"]
    assert_no_temp_files(tmp_path)


# -- errors ------------------------------------------------------------------------------

def test_missing_image(daemon, tmp_path):
    ref = "example.com/occy-docker/missing:1"
    proc = run("process", docker_uri(daemon, ref), "tar://%s" % (tmp_path / "x.tar"),
               tmp=tmp_path, check=False)
    assert "Error: Image not found: %s" % ref in proc.stderr
    assert not (tmp_path / "x.tar").exists()
    assert_no_temp_files(tmp_path)


def test_missing_socket(tmp_path):
    sock = tmp_path / "no" / "docker.sock"
    src = tmp_path / "in.tar"
    ib.build_image(src, ib.sample_layers())
    for args in (["process", "docker://a/b:1?socket=%s" % sock, "tar://%s" % (tmp_path / "o")],
                 ["process", "tar://%s" % src, "docker://a/b:1?socket=%s" % sock],
                 ["info", "docker://a/b:1?socket=%s" % sock]):
        proc = occystrap(*args, check=False)
        assert ("Error: cannot connect to the Docker daemon at %s: No such file or directory"
                % sock) in proc.stderr


class _ToUnix(socketserver.BaseRequestHandler):
    """Forward one TCP connection to the unix socket `server.target`, both ways."""

    def handle(self):
        with socket.socket(socket.AF_UNIX) as upstream:
            upstream.connect(self.server.target)
            back = threading.Thread(target=self._pipe, args=(upstream, self.request))
            back.start()
            self._pipe(self.request, upstream)
            back.join()

    @staticmethod
    def _pipe(source, dest):
        try:
            while True:
                data = source.recv(1 << 16)
                if not data:
                    break
                dest.sendall(data)
        except OSError:
            pass
        try:
            dest.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class _TCPForward(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True


def test_docker_host_selects_the_daemon(dockerd, tmp_path):
    """$DOCKER_HOST (unix:// and tcp://) stands in for /var/run/docker.sock; an explicit
    ?socket= still wins over it."""
    src = tmp_path / "in.tar"
    ib.build_image(src, ib.sample_layers(), repotag="example.com/occy-dh/src:1")
    ref = "example.com/occy-dh/host:1"
    env = {"DOCKER_HOST": "unix://" + dockerd.socket}
    try:
        occystrap("process", "tar://%s" % src, "docker://" + ref, env=env, check=True)
        assert tags_of(dockerd, ref) == [ref]
        occystrap("process", "docker://" + ref, "tar://%s" % (tmp_path / "a.tar"),
                  env=env, check=True)
        missing = str(tmp_path / "missing.sock")
        proc = occystrap("info", "docker://" + ref, env={"DOCKER_HOST": "unix://" + missing},
                         check=False)
        assert "cannot connect to the Docker daemon at %s" % missing in proc.stderr
        occystrap("info", docker_uri(dockerd, ref), env={"DOCKER_HOST": "unix://" + missing},
                  check=True)
        forward = _TCPForward(("127.0.0.1", 0), _ToUnix)
        forward.target = dockerd.socket
        thread = threading.Thread(target=forward.serve_forever)
        thread.start()
        try:
            tcp = {"DOCKER_HOST": "tcp://127.0.0.1:%d" % forward.server_address[1]}
            occystrap("process", "docker://" + ref, "tar://%s" % (tmp_path / "b.tar"),
                      env=tcp, check=True)
        finally:
            forward.shutdown()
            forward.server_close()
            thread.join()
        assert read_tarball(tmp_path / "b.tar") == read_tarball(tmp_path / "a.tar")
    finally:
        rmi(dockerd, ref)


def test_refused_load_leaves_no_tag(daemon, tmp_path):
    """dockerd refuses a windows image; podman refuses a config it cannot parse."""
    src = tmp_path / "bad.tar"
    bad = {"os": "windows"} if daemon.name == "dockerd" else {"created": "not-a-time"}
    ib.build_image(src, ib.sample_layers(), config=bad)
    dest = "example.com/occy-docker/refused:1"
    proc = run("process", "tar://%s" % src, docker_uri(daemon, dest), tmp=tmp_path,
               check=False)
    assert "Error: Docker daemon refused the image: " in proc.stderr
    assert tags_of(daemon, dest) is None
    assert_no_temp_files(tmp_path)


# -- API version negotiation (a stub daemon on a unix socket) ----------------------------

class _StubHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api_version = "1.30"

    def do_GET(self):
        if self.path == "/version":
            body = json.dumps({"ApiVersion": self.api_version}).encode()
            status = 200
        else:
            body = json.dumps({"message": "no such image: %s" % self.path}).encode()
            status = 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.paths.append(self.path)

    def address_string(self):
        return "stub"

    def log_message(self, *args):
        pass


class _StubServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.mark.parametrize("reported,prefix", [("1.30", "/v1.30"), ("1.43", "/v1.41")])
def test_api_version_negotiation(tmp_path, reported, prefix):
    path = str(tmp_path / "stub.sock")
    handler = type("Handler", (_StubHandler,), {"api_version": reported})
    server = _StubServer(path, handler)
    server.paths = []
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    client = UnixHTTPClient(path)
    try:
        response = client.request("GET", "/images/x/json", ok=(404,))
        assert response.status == 404
        with pytest.raises(InputError, match=r"no such image: %s/images/x/json \(HTTP 404\)"
                           % prefix):
            client.request("GET", "/images/x/json")
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join()
    assert server.paths == ["/version", prefix + "/images/x/json", prefix + "/images/x/json"]
