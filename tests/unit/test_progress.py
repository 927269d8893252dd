"""Progress as the user sees it: byte bars on a terminal, `Progress:` lines in a log.

Every test waits for content (a line, a bar) with a generous bound; none asserts how
long anything took."""
import io
import os
import queue
import re
import subprocess
import sys
import threading

from occystrap.progress import Progress
from tests.cli import REPO, on_terminal
from tests.stallregistry import StallingRegistry, stall_layers

ENV = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))


def _lines(stream):
    """A queue of stream's lines as they come (None at the end)."""
    lines = queue.Queue()

    def pump():
        for line in stream:
            lines.put(line)
        lines.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_off_a_terminal_a_line_reports_the_bytes_done(tmp_path):
    """While a registry layer is stalled half-way, the log says how far it got."""
    with StallingRegistry(stall_layers()) as registry:
        proc = subprocess.Popen(
            [sys.executable, "-m", "occystrap", "--insecure", "process",
             "registry://" + registry.reference, "tar://%s" % (tmp_path / "out.tar")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=REPO, env=dict(ENV, OCCYSTRAP_PROGRESS_SECONDS="0.1"))
        try:
            assert registry.stalled.wait(60)
            lines, seen = _lines(proc.stderr), []
            pattern = re.compile(r"Progress: [\d.]+ [KM]?B done, 1/2 layers done; "
                                 r"layer 2/2 ([\d.]+) MB of 16.0 MB$")
            while True:
                line = lines.get(timeout=60)
                assert line is not None, "".join(seen)
                seen.append(line)
                match = pattern.search(line.rstrip("\n"))
                if match and float(match.group(1)) > 0:
                    break
            registry.release.set()
            out = proc.stdout.read()        # stderr is the pump's alone
            proc.stdout.close()
            proc.wait(60)
            while (line := lines.get(timeout=60)) is not None:
                seen.append(line)
            proc.stderr.close()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, "".join(seen)
    assert out == ""                    # stdout stays for machine output
    assert seen[-1].startswith("Summary: 2 layers"), "".join(seen[-3:])


def test_on_a_terminal_each_layer_has_a_byte_bar(tmp_path):
    """`process` on a pseudo-terminal draws tqdm bars in bytes, one per layer."""
    returncode, text, out = on_terminal("process", "tar://examples/hello.tar",
                                        "tar://%s" % (tmp_path / "out.tar"), timeout=60)
    assert returncode == 0, text
    for layer in ("layer 1/3", "layer 2/3", "layer 3/3"):
        assert re.search(re.escape(layer) + r":.*[\d.]+k?/[\d.]+k? \[.*B/s\]", text), text
    assert "Progress:" not in text     # the log lines are for logs, not terminals
    assert "Summary: 3 layers" in text and out == b""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_shows_as_soon_as_its_task_starts():
    """A daemon's save is on screen before its first byte arrives."""
    screen = _Terminal()
    with Progress(stream=screen) as progress:
        progress.task("docker save demo:1")
        assert "docker save demo:1" in screen.getvalue()
