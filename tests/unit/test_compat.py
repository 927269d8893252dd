"""Issue 11: scripts written for occystrap 0.4.17 keep working (ranges, gzip levels)."""
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
