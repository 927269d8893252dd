"""SIGTERM and SIGINT in the middle of a copy (issue 8 §3): a real `occystrap process`
reading from a registry that stalls halfway through a layer is signalled; it must print
one `Error:` line, exit 143 (SIGTERM) or 130 (SIGINT) and leave no partial output."""
import contextlib
import http.server
import json
import os
import signal
import socketserver
import threading

import pytest

from tests import imagebuilder as ib
from tests.cli import occystrap
from tests.stallregistry import SIGNALS, StallingRegistry, assert_reported, signalled_run, \
    stall_layers

OUTPUTS = {"tar": "tar://{out}/image.tar", "dir": "dir://{out}/d",
           "expand": "dir://{out}/d?expand=true", "oci": "oci://{out}/bundle",
           "mounts": "mounts://{out}/m"}


@pytest.mark.parametrize("sig", sorted(SIGNALS), ids=lambda sig: sig.name)
@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_signal_leaves_no_partial_output(tmp_path, output, sig):
    if output == "mounts" and os.geteuid() != 0:
        pytest.skip("mounts:// needs root")
    out = tmp_path / "out"
    out.mkdir()
    with StallingRegistry(stall_layers()) as registry:
        status, err = signalled_run(registry, OUTPUTS[output].format(out=out), sig)
    assert_reported(status, err, sig)
    assert os.listdir(out) == []


def test_sigterm_in_a_single_layer_thread(tmp_path):
    """-j 1: the layer is copied in the main thread, where the signal lands."""
    out = tmp_path / "out"
    out.mkdir()
    with StallingRegistry(stall_layers()) as registry:
        status, err = signalled_run(registry, "tar://%s/image.tar" % out, signal.SIGTERM,
                                     "-j", "1")
    assert_reported(status, err, signal.SIGTERM)
    assert os.listdir(out) == []


def _snapshot(root):
    """{relative path: file content, or None for anything else} of the tree at root."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, root)] = None
            if os.path.isfile(full) and not os.path.islink(full):
                with open(full, "rb") as fileobj:
                    found[os.path.relpath(full, root)] = fileobj.read()
    return found


def test_sigterm_keeps_an_earlier_expanded_tree(tmp_path):
    old = tmp_path / "old.tar"
    ib.build_image(old, ib.sample_layers())
    out = tmp_path / "d"
    occystrap("process", "tar://%s" % old, "dir://%s?expand=true" % out, check=True)
    before = _snapshot(out)
    with StallingRegistry(stall_layers()) as registry:
        status, err = signalled_run(registry, "dir://%s?expand=true" % out, signal.SIGTERM)
    assert_reported(status, err, signal.SIGTERM)
    assert _snapshot(out) == before


class _VersionOnly(http.server.BaseHTTPRequestHandler):
    """A Docker daemon that answers only the version ping (the signal comes first)."""
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"ApiVersion": "1.41"}).encode()
        self.send_response(200 if self.path == "/version" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "stub"

    def log_message(self, *args):
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextlib.contextmanager
def _stub_daemon(path):
    server = _UnixServer(str(path), _VersionOnly)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_sigterm_removes_the_docker_load_spool(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    with _stub_daemon(tmp_path / "docker.sock"), StallingRegistry(stall_layers()) as registry:
        status, err = signalled_run(registry, "docker://demo:1?socket=%s"
                                    % (tmp_path / "docker.sock"), signal.SIGTERM,
                                    "--temp-dir", str(spool), ready=lambda: os.listdir(spool))
    assert_reported(status, err, signal.SIGTERM)
    assert os.listdir(spool) == []
