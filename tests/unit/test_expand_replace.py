"""dir://PATH?expand=true over an earlier tree (issue 8 §3): PATH/<manifest> is always
one whole tree, even when a run is killed (SIGKILL) in the middle of the swap, and a
killed run's staging tree is deleted by the next run."""
import fcntl
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from occystrap.transports import outpath
from tests import imagebuilder as ib
from tests.cli import REPO, occystrap

REPOTAG = "example.com/demo/app:1.0"

# Runs the CLI with outpath.exchange wrapped: KILL = "before" / "after" SIGKILLs the
# process just before / after the exchange; "none" makes it report no exchange support.
KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    from occystrap.transports import outpath
    real, kill = outpath.exchange, sys.argv.pop(1)
    def exchange(first, second):
        if kill == "none":
            return False
        if kill == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        real(first, second)
        os.kill(os.getpid(), signal.SIGKILL)
    outpath.exchange = exchange
    from occystrap.cli import main
    main(sys.argv[1:])
""")


def _run_wrapped(kill, *args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", KILLED_RUN, kill, *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=REPO,
                          stdin=subprocess.DEVNULL)


def _tree(root):
    """Every entry under root: (relative path, file type, content or link target)."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            mode = os.lstat(full).st_mode
            content = None
            if stat.S_ISREG(mode):
                with open(full, "rb") as fileobj:
                    content = fileobj.read()
            elif stat.S_ISLNK(mode):
                content = os.readlink(full)
            entries.append((os.path.relpath(full, root), stat.S_IFMT(mode), content))
    return sorted(entries)


@pytest.fixture
def images(tmp_path):
    """(old image, new image, the tree each expands to)."""
    old, new = tmp_path / "old.tar", tmp_path / "new.tar"
    ib.build_image(old, ib.sample_layers(), repotag=REPOTAG)
    ib.build_image(new, [ib.layer([("dir", "srv"), ("file", "srv/index.html", b"new\n")])],
                   repotag=REPOTAG)
    trees = []
    for path in (old, new):
        out = tmp_path / ("expected-" + path.stem)
        occystrap("process", "tar://%s" % path, "dir://%s?expand=true" % out, check=True)
        trees.append(_tree(out / "manifest"))
    assert trees[0] != trees[1]
    return old, new, trees[0], trees[1]


def _staging(out):
    return sorted(name for name in os.listdir(out) if name.startswith(".occystrap-expand-"))


def test_expand_replaces_an_existing_tree(images, tmp_path):
    old, new, _old_tree, new_tree = images
    out = tmp_path / "out"
    occystrap("process", "tar://%s" % old, "dir://%s?expand=true" % out, check=True)
    occystrap("process", "tar://%s" % new, "dir://%s?expand=true" % out, check=True)
    assert _tree(out / "manifest") == new_tree
    assert _staging(out) == []


@pytest.mark.parametrize("kill", ["before", "after"])
def test_killed_swap_leaves_one_whole_tree(images, tmp_path, kill):
    old, new, old_tree, new_tree = images
    out = tmp_path / "out"
    occystrap("process", "tar://%s" % old, "dir://%s?expand=true" % out, check=True)
    proc = _run_wrapped(kill, "process", "tar://%s" % new, "dir://%s?expand=true" % out)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _tree(out / "manifest") == (old_tree if kill == "before" else new_tree)
    assert len(_staging(out)) == 1         # the other tree, left by the killed run
    occystrap("process", "tar://%s" % old, "dir://%s?expand=true" % out, check=True)
    assert _tree(out / "manifest") == old_tree
    assert _staging(out) == []             # the next run deleted the leftover


def test_without_exchange_the_old_tree_is_renamed_aside(images, tmp_path):
    old, new, _old_tree, new_tree = images
    out = tmp_path / "out"
    occystrap("process", "tar://%s" % old, "dir://%s?expand=true" % out, check=True)
    proc = _run_wrapped("none", "process", "tar://%s" % new, "dir://%s?expand=true" % out)
    assert proc.returncode == 0, proc.stderr
    assert _tree(out / "manifest") == new_tree
    assert _staging(out) == []


def test_a_live_runs_staging_tree_is_kept(images, tmp_path):
    old = images[0]
    out = tmp_path / "out"
    (out / ".occystrap-expand-live").mkdir(parents=True)
    (out / ".occystrap-expand-dead").mkdir()
    fd = os.open(out / ".occystrap-expand-live", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)          # as a run in progress holds its tree
        occystrap("process", "tar://%s" % old, "dir://%s?expand=true" % out, check=True)
    finally:
        os.close(fd)
    assert _staging(out) == [".occystrap-expand-live"]


def test_exchange_swaps_two_directories(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux only")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "from-a").touch()
    (tmp_path / "b").mkdir()
    assert outpath.exchange(tmp_path / "a", tmp_path / "b")
    assert os.listdir(tmp_path / "b") == ["from-a"] and os.listdir(tmp_path / "a") == []


def test_replace_tree_without_exchange_puts_the_old_tree_back_on_failure(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(outpath, "exchange", lambda first, second: False)
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "old").touch()
    with pytest.raises(FileNotFoundError):
        outpath.replace_tree(tmp_path / "missing", tmp_path / "target", tmp_path / "aside")
    assert sorted(os.listdir(tmp_path)) == ["target"]
    assert os.listdir(tmp_path / "target") == ["old"]


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_expand_refuses_a_non_directory_in_the_trees_place(images, tmp_path, kind):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere").mkdir()
    if kind == "file":
        (out / "manifest").write_bytes(b"keep")
    else:
        (out / "manifest").symlink_to(tmp_path / "elsewhere")
    proc = occystrap("process", "tar://%s" % images[0], "dir://%s?expand=true" % out,
                     check=False)
    assert "Error: Expanded tree path exists and is not a directory: %s" % (out / "manifest") \
        in proc.stderr
    assert os.listdir(out) == ["manifest"] and os.listdir(tmp_path / "elsewhere") == []
