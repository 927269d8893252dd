"""Run the occystrap CLI as a user would: a separate process, its exit code and output."""
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command(*args):
    """The argv of `python -m occystrap ARGS`."""
    return [sys.executable, "-m", "occystrap", *map(str, args)]


def environment(env=None, pure=False):
    """os.environ with env over it, this checkout first on PYTHONPATH, and (pure) the
    pure-Python twins selected."""
    environ = dict(os.environ, **(env or {}))
    environ["PYTHONPATH"] = REPO + os.pathsep + environ.get("PYTHONPATH", "")
    if pure:
        environ["OCCYSTRAP_NO_EXTENSIONS"] = "1"
    return environ


def background(*args, env=None, pure=False, **popen):
    """`python -m occystrap ARGS` started, not waited for: a Popen (stdout and stderr
    piped, as text, unless popen says otherwise)."""
    options = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    options.update(popen)
    return subprocess.Popen(command(*args), stdin=subprocess.DEVNULL, cwd=REPO,
                            env=environment(env, pure), **options)


def occystrap(*args, env=None, pure=False, check=None, timeout=None):
    """Run `python -m occystrap ARGS`; pure=True selects the pure-Python twins; timeout
    (seconds) fails a run that would hang instead of hanging the suite.

    check=True asserts exit 0, check=False asserts exit 1 with exactly one Error: line,
    no traceback and no `Error: internal error:` (an unexpected exception); None checks
    nothing.
    """
    proc = subprocess.run(command(*args), capture_output=True, text=True,
                          env=environment(env, pure), stdin=subprocess.DEVNULL, cwd=REPO,
                          timeout=timeout)
    if check is True:
        assert proc.returncode == 0, proc.stderr
    elif check is False:
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, proc.stderr
        assert not errors[0].startswith("Error: internal error:"), proc.stderr
    return proc


def on_terminal(*args, env=None, timeout=120):
    """Run `python -m occystrap ARGS` with stderr on a pseudo-terminal (100 columns; a
    new one is 0 wide, where tqdm draws nothing): (exit status, what the terminal
    showed, stdout bytes)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = background(*args, env=env, stderr=slave, text=False)
    os.close(slave)
    screen = b""
    try:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:             # EIO: the child closed the terminal
                break
            if not data:
                break
            screen += data
        out, _ = proc.communicate(timeout=timeout)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, screen.decode(errors="replace"), out
