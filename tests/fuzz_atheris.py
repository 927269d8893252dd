"""Coverage-guided fuzzing of the tar core with atheris (libFuzzer), for long runs.

    python tests/fuzz_atheris.py -max_total_time=3600 -timeout=20 -rss_limit_mb=2048 \
        -max_len=65536 fuzz-work/ tests/data/fuzz-corpus/

Every input goes through tests/tarfuzz.check (both twins, every mode and chunking,
CPython tarfile as the oracle); a broken rule raises, and libFuzzer saves the input as
crash-<sha1> (a segfault or a timeout too).  The seed layers are written to
fuzz-work/ first, so the run starts from valid archives.  Coverage comes from the
pure-Python twin and tarfile (atheris instruments Python); the Cython twin is checked
on every input but is not instrumented.
"""
import os
import sys

import atheris

# This checkout's occystrap, not whichever one is installed (found the hard way).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

with atheris.instrument_imports(include=["occystrap", "tarfile"]):
    import tarfile  # noqa: F401
    from occystrap._native import globset_py, rewrite_py, tarstream_py  # noqa: F401

from tests import tarfuzz  # noqa: E402

assert tarstream_py.__file__.startswith(ROOT), tarstream_py.__file__

tarfuzz.HANG_SECONDS = 0          # libFuzzer's -timeout owns SIGALRM
TWINS = tarfuzz.load_twins(os.environ.get("OCCYSTRAP_FUZZ_TWINS"))
# Failure classes to let pass (known and being fixed), e.g. "oracle-global-pax,hang".
IGNORE = set(filter(None, os.environ.get("OCCYSTRAP_FUZZ_IGNORE", "").split(",")))


def test_one_input(data):
    failures = [f for f in tarfuzz.check(data, TWINS) if f[0] not in IGNORE]
    if failures:
        raise AssertionError("%s: %s" % failures[0])


def main():
    work = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if work and not os.path.isfile(work):      # a file: replay that one input
        os.makedirs(work, exist_ok=True)
        for name, data in tarfuzz.seeds():
            with open(os.path.join(work, "seed-" + name), "wb") as f:
                f.write(data)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
