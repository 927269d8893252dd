"""Run the occystrap CLI as a user would: a separate process, its exit code and output."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def occystrap(*args, env=None, pure=False, check=None, timeout=None):
    """Run `python -m occystrap ARGS`; pure=True selects the pure-Python twins; timeout
    (seconds) fails a run that would hang instead of hanging the suite.

    check=True asserts exit 0, check=False asserts exit 1 with exactly one Error: line,
    no traceback and no `Error: internal error:` (an unexpected exception); None checks
    nothing.
    """
    environ = dict(os.environ, **(env or {}))
    environ["PYTHONPATH"] = REPO + os.pathsep + environ.get("PYTHONPATH", "")
    if pure:
        environ["OCCYSTRAP_NO_EXTENSIONS"] = "1"
    proc = subprocess.run([sys.executable, "-m", "occystrap", *map(str, args)],
                          capture_output=True, text=True, env=environ,
                          stdin=subprocess.DEVNULL, cwd=REPO, timeout=timeout)
    if check is True:
        assert proc.returncode == 0, proc.stderr
    elif check is False:
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, proc.stderr
        assert not errors[0].startswith("Error: internal error:"), proc.stderr
    return proc
