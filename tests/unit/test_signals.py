"""SIGTERM and SIGINT in the middle of a copy (issue 8 §3): a real `occystrap process`
reading from a registry that stalls halfway through a layer is signalled; it must print
one `Error:` line, exit 143 (SIGTERM) or 130 (SIGINT) and leave no partial output."""
import os
import signal
import subprocess
import sys

import pytest

from tests import imagebuilder as ib
from tests.cli import REPO, occystrap
from tests.stallregistry import StallingRegistry

OUTPUTS = {"tar": "tar://{out}/image.tar", "dir": "dir://{out}/d",
           "expand": "dir://{out}/d?expand=true", "oci": "oci://{out}/bundle"}
SIGNALS = {signal.SIGTERM: (143, "Error: terminated"),
           signal.SIGINT: (130, "Error: interrupted")}


def _layers():
    return [ib.layer([("dir", "etc"), ("file", "etc/hostname", b"demo\n")]),
            ib.layer([("file", "big", os.urandom(4 << 20))])]


def _signalled_run(registry, destination, sig, *options):
    """Start the copy, signal it once the stalled layer is half read; (status, stderr)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "occystrap", "--insecure", "--retries", "0",
                             *options, "process", "registry://" + registry.reference,
                             destination],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        assert registry.stalled.wait(60), "the copy never reached the stalled layer"
        proc.send_signal(sig)
        registry.release.set()
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def _assert_reported(status, err, sig):
    assert (status, [line for line in err.splitlines() if line.startswith("Error:")]) == \
        (SIGNALS[sig][0], [SIGNALS[sig][1]]), err
    assert "Traceback" not in err and "Exception ignored" not in err, err


@pytest.mark.parametrize("sig", sorted(SIGNALS), ids=lambda sig: sig.name)
@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_signal_leaves_no_partial_output(tmp_path, output, sig):
    out = tmp_path / "out"
    out.mkdir()
    with StallingRegistry(_layers()) as registry:
        status, err = _signalled_run(registry, OUTPUTS[output].format(out=out), sig)
    _assert_reported(status, err, sig)
    assert os.listdir(out) == []


def test_sigterm_in_a_single_layer_thread(tmp_path):
    """-j 1: the layer is copied in the main thread, where the signal lands."""
    out = tmp_path / "out"
    out.mkdir()
    with StallingRegistry(_layers()) as registry:
        status, err = _signalled_run(registry, "tar://%s/image.tar" % out, signal.SIGTERM,
                                     "-j", "1")
    _assert_reported(status, err, signal.SIGTERM)
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
    with StallingRegistry(_layers()) as registry:
        status, err = _signalled_run(registry, "dir://%s?expand=true" % out, signal.SIGTERM)
    _assert_reported(status, err, signal.SIGTERM)
    assert _snapshot(out) == before
