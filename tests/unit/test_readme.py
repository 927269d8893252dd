"""The README's bundled example runs as written and leaves the checkout clean (its
outputs go to a temporary directory, not the repository root)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def untracked():
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(shutil.which("redis-server") is None,
                    reason="redis-server is not installed (the example's broker; .ci/run)")
def test_readme_example_runs_and_writes_only_to_a_temp_dir(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "occystrap"        # `occystrap` is this checkout's code
    shim.write_text('#!/bin/sh\nexec "%s" -m occystrap "$@"\n' % sys.executable)
    shim.chmod(0o755)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]), TMPDIR=str(temp),
               PYTHONPATH=str(ROOT))
    commands = subprocess.run(["sh", ".ci/readme-example"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout
    assert "occystrap process tar://examples/hello.tar" in commands
    before = untracked()
    run = subprocess.run(["bash", "-e"], input=commands, cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Summary: 3 layers" in run.stderr and "verified OK" in run.stderr
    (out,) = temp.iterdir()             # the example's mktemp -d
    assert sorted(p.name for p in out.iterdir()) == ["hello-bundle", "hello-clean.tar",
                                                     "hello-dir", "mirror", "mirror.yaml",
                                                     "spread", "spread.yaml", "synced",
                                                     "worker.log"]
    assert run.stderr.count("Sync: 1 images, 1 copied") == 2
    assert run.stderr.count("Sync: 1 images, 1 unchanged") == 2
    assert " on w1@" in run.stderr                                # the worker copied it
    spread = json.loads((out / "spread" / "index.json").read_text())["manifests"]
    synced = json.loads((out / "synced" / "index.json").read_text())["manifests"]
    assert spread == synced                                       # the same bytes
    entries = json.loads((out / "mirror" / "index.json").read_text())["manifests"]
    source = json.loads((ROOT / "examples" / "multiarch" / "index.json").read_text())
    tags = {e["annotations"]["org.opencontainers.image.ref.name"]: e["digest"]
            for e in entries}
    assert tags["demo"] == source["manifests"][0]["digest"]      # byte-exact copy
    assert tags["clean"] != tags["demo"]                          # rewritten index
    assert "linux/arm64" in run.stdout                            # info lists platforms
    assert untracked() == before
