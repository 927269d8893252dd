"""Issue 11: scripts written for occystrap 0.4.17 keep working (ranges, gzip levels)."""
import json
import os
import types

from occystrap.transports import base
from tests import imagebuilder as ib
from tests.cli import occystrap


def test_parallel_zero_means_one_thread_per_usable_cpu(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    local = types.SimpleNamespace(network=False)
    remote = types.SimpleNamespace(network=True)
    assert base.layer_threads(0, local) == 3
    assert base.layer_threads(0, remote) == 3
    assert base.layer_threads(8, remote) == 8
    assert base.layer_threads(8, local) == 3


def test_parallel_zero_and_no_retries_are_accepted(tmp_path):
    path = tmp_path / "in.tar"
    ib.build_image(path, ib.sample_layers(), repotag="demo/app:1.0")
    occystrap("-j", "0", "--retries", "0", "process", "tar://%s" % path,
               "tar://%s" % (tmp_path / "out.tar"), check=True)
    occystrap("-j", "0", "check", "tar://%s" % path, check=True)


def test_rerun_into_a_dir_tree_0417_wrote(tmp_path):
    """0.4.17 stored the config re-serialized (indent 4, sorted keys) under the original
    digest's name; a re-run replaces it (and a layer.tar of the wrong size) and verifies."""
    path = tmp_path / "in.tar"
    info = ib.build_image(path, ib.sample_layers(), repotag="demo/app:1.0")
    out = tmp_path / "d"
    occystrap("process", "tar://%s" % path, "dir://%s" % out, check=True)
    config = out / (info["config_digest"].split(":")[1] + ".json")
    original = config.read_bytes()
    config.write_bytes(json.dumps(json.loads(original), indent=4, sort_keys=True).encode())
    layer = out / info["diff_ids"][0].split(":")[1] / "layer.tar"
    layer_bytes = layer.read_bytes()
    layer.write_bytes(layer_bytes[:1024])
    proc = occystrap("process", "tar://%s" % path, "dir://%s" % out, check=True)
    assert "verified OK" in proc.stderr
    assert config.read_bytes() == original and layer.read_bytes() == layer_bytes
    assert not [name for name in os.listdir(out) if name.endswith(".partial")]
    occystrap("check", "dir://%s" % out, check=True)


def test_search_on_a_damaged_image_prints_matches_then_fails(tmp_path):
    """0.4.17 printed the matches of a layer whose content does not hash to its
    diff_id; so do we, for every layer, then report the integrity error and exit 1."""
    path = tmp_path / "in.tar"
    info = ib.build_image(path, ib.sample_layers(), repotag="demo/app:1.0")
    data = bytearray(path.read_bytes())
    needle = b"print('hello')"
    at = data.index(needle)
    data[at:at + len(needle)] = b"print('HELLO')"
    path.write_bytes(bytes(data))
    clean = occystrap("search", "--script-friendly", "tar://%s" % path, "*", check=False)
    assert "content hashes to" in clean.stderr and info["diff_ids"][1] in clean.stderr
    layers = {line.split(":")[2] for line in clean.stdout.splitlines()}
    assert len(layers) == 3             # the damaged layer's matches and the others'
    serial = occystrap("-j", "1", "search", "tar://%s" % path, "main.py", check=False)
    assert "Found 1 match in 1 layer." in serial.stdout
