"""Differential fuzzing of the tar core: both twins and CPython tarfile (tests/tarfuzz.py).

- every input that ever failed (tests/data/fuzz-corpus/) is replayed;
- a short deterministic campaign runs in every suite run (OCCYSTRAP_FUZZ_INPUTS sets
  its length; `.ci/run` runs a longer bounded one with `python -m tests.tarfuzz`);
- self-tests plant broken twins and show each check fails when it should.

Inputs run in a worker process (tarfuzz.Worker), so a segfault or a loop in C is a
failure with the input named, not the end of the test run.
"""
import glob
import os
import sys
import time

import pytest

from occystrap._native._common import TarError
from tests import tarfuzz

pytestmark = pytest.mark.native

CORPUS = sorted(glob.glob(os.path.join(tarfuzz.CORPUS, "*.tar")))


@pytest.fixture(scope="module")
def worker(request):
    names = ["python"]
    from occystrap import _native
    if _native.IMPLEMENTATION == "cython" and not request.config.getoption("--no-native"):
        names.insert(0, "cython")
    w = tarfuzz.Worker(",".join(names))
    yield w
    w.close()


def _report(failures):
    return "\n".join("%s: %s" % (kind, detail[:400]) for kind, detail in failures)


@pytest.mark.parametrize("name", [n for n, _ in tarfuzz.seeds()])
def test_seed_layers_pass_every_check(worker, name):
    data = dict(tarfuzz.seeds())[name]
    assert tarfuzz.tarfile_members(data)[0] == "ok"
    failures = worker.check(data)
    assert not failures, _report(failures)


@pytest.mark.parametrize("path", CORPUS, ids=os.path.basename)
def test_corpus_replays_clean(worker, path):
    with open(path, "rb") as f:
        data = f.read()
    failures = worker.check(data)
    assert not failures, _report(failures)


def test_bounded_campaign(worker, tmp_path):
    inputs = int(os.environ.get("OCCYSTRAP_FUZZ_INPUTS", "60"))
    seed = int(os.environ.get("OCCYSTRAP_FUZZ_SEED", "1"))
    found = {}
    pool = tarfuzz.seeds()
    for index in range(inputs):
        tag, data = tarfuzz.generate(seed, index, pool)
        failures = worker.check(data)
        if failures:
            found.setdefault(tarfuzz.failure_class(failures), (index, tag, failures))
    assert not found, "\n".join(
        "%s: input %d (%s, regenerate with tarfuzz.generate(%d, %d, seeds())): %s" % (
            cls, index, tag, seed, index, _report(failures[:1]))
        for cls, (index, tag, failures) in sorted(found.items()))


def test_generation_is_deterministic():
    pool = tarfuzz.seeds()
    assert [tarfuzz.generate(3, i, pool) for i in range(20)] == \
        [tarfuzz.generate(3, i, pool) for i in range(20)]


# -- self-tests: each check can fail -------------------------------------------------

class _Planted:
    """A twin wrapping the pure one, with one planted fault."""

    def __init__(self, name, fault):
        real = tarfuzz.Twin("python")
        self.name, self.tarstream, self.globset = name, real.tarstream, real.globset
        base = real.rewrite.TarRewriter

        class Rewriter(base):
            def feed(inner, data):
                return fault(inner, base.feed, bytes(data)) if fault else base.feed(inner, data)

        self.rewrite = type("rewrite", (), {"TarRewriter": Rewriter})


def _twins(fault):
    return [tarfuzz.Twin("python"), _Planted("planted", fault)]


def _flip_output(rewriter, feed, data):
    out = feed(rewriter, data)
    if out:
        out[-1] ^= 1
    return out


def _chunk_dependent(rewriter, feed, data):
    if len(data) == 511:
        raise TarError("one byte at a time")
    return feed(rewriter, data)


def _other_message(rewriter, feed, data):
    try:
        return feed(rewriter, data)
    except Exception as exc:
        raise type(exc)(str(exc) + "!") from None


def _wrong_mtime(rewriter, feed, data):
    out = feed(rewriter, data)
    rewriter.members[:] = [m._replace(mtime=m.mtime + 1) for m in rewriter.members]
    return out


def _lose_output(rewriter, feed, data):
    feed(rewriter, data)
    return bytearray()          # a rewrite that emits nothing: re-parsing finds no members


def _refuse(rewriter, feed, data):
    raise TarError("refused")


def _overflow(rewriter, feed, data):
    raise OverflowError("planted")


def _loop(rewriter, feed, data):
    while True:
        pass


def _crash(rewriter, feed, data):
    os.abort()


VALID = dict(tarfuzz.seeds())["pax"]


@pytest.mark.parametrize("fault, data, expected", [
    (_flip_output, VALID, "twins"),
    (_chunk_dependent, VALID, "chunking"),
    (_wrong_mtime, VALID, "oracle-members"),
    (_refuse, VALID, "oracle-refused-no-rule"),
    (_overflow, VALID, "exception"),
    (_loop, VALID, "hang"),
    (_other_message, bytes(range(256)) * 4, "twins"),
    (_lose_output, VALID, "reparse"),
], ids=lambda v: v.__name__ if callable(v) else "")
def test_planted_faults_are_found(monkeypatch, fault, data, expected):
    monkeypatch.setattr(tarfuzz, "HANG_SECONDS", 1)
    kinds = {kind for kind, _ in tarfuzz.check(data, _twins(fault))}
    assert expected in kinds


def test_we_accept_what_tarfile_refuses_is_found():
    class Lenient:
        name = "lenient"

        def __init__(self):
            self.tarstream = self.globset = None
            self.rewrite = type("rewrite", (), {"TarRewriter": _AcceptAll})

    kinds = {k for k, _ in tarfuzz.check(b"\x7fELF" + bytes(2000), [Lenient()])}
    assert "oracle-tarfile-refused" in kinds


class _AcceptAll:
    def __init__(self, **kwargs):
        self.members, self.count, self.dropped = [], 0, 0

    def feed(self, data):
        return bytearray()

    def close(self):
        return bytearray()


def crashing_twins():
    return _twins(_crash)


def test_worker_reports_a_crash_and_recovers():
    w = tarfuzz.Worker("tests.native.test_differential:crashing_twins", timeout=30)
    try:
        assert [k for k, _ in w.check(VALID)] == ["crash"]
        assert [k for k, _ in w.check(VALID)] == ["crash"]     # a new worker each time
    finally:
        w.close()


def looping_twins():
    return _twins(_loop)


def test_worker_kills_a_hang_it_cannot_interrupt(monkeypatch):
    # The alarm cannot stop a C loop that holds the GIL; the worker's timeout does.
    monkeypatch.setattr(tarfuzz, "HANG_SECONDS", 10 ** 6)
    w = tarfuzz.Worker("tests.native.test_differential:looping_twins", timeout=2)
    try:
        start = time.monotonic()
        assert [k for k, _ in w.check(VALID)] == ["hang"]
        assert time.monotonic() - start < 20
    finally:
        w.close()


@pytest.mark.parametrize("data, rule", [
    (tarfuzz.member(b"a", raw={100: b"0o644\0\0\0"}) + tarfuzz.END, "octal-syntax"),
    (tarfuzz.member(b"a", raw={124: b"-5" + bytes(10)}) + tarfuzz.END, "negative-size"),
    (tarfuzz.member(b"a", raw={124: b"\x81" + bytes(11)}) + tarfuzz.END, "base256-lead-byte"),
    (tarfuzz.member(b"a", raw={136: b"\x80" + (2 ** 64).to_bytes(11, "big")}) + tarfuzz.END,
     "base256-over-int64"),
    (tarfuzz.pax([(b"uid", b"-1")]) + tarfuzz.member(b"a") + tarfuzz.END, "pax-uid"),
    (tarfuzz.pax([(b"mtime", b"inf")]) + tarfuzz.member(b"a") + tarfuzz.END, "pax-mtime"),
    (tarfuzz.member(b"a") + b"x" * 512 + tarfuzz.END, "bad-header-after-first"),
    (tarfuzz.member(b"a", b"abc")[:600], "truncated"),
    (tarfuzz.ext(b"L", b"n" * (tarfuzz.CAP + 1)) + tarfuzz.member(b"a"), "ext-header-over-cap"),
    (tarfuzz.ext(b"L", b"n" * 600000) + tarfuzz.ext(b"K", b"k" * 600000) + tarfuzz.member(b"a"),
     "chained-ext-over-cap"),
    (tarfuzz.sparse_member(b"s", [(0, b"a")], 1, ext_blocks=[(0, 0)] * (21 * 2050))
     + tarfuzz.END, "sparse-map-over-cap"),
    (tarfuzz.pax([(b"size", b"1e3")]) + tarfuzz.member(b"a") + tarfuzz.END, "pax-size"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_strict_rules_name_the_rule(data, rule):
    assert any(hit.startswith(rule) for hit in tarfuzz.strict_rules(data)), \
        tarfuzz.strict_rules(data)


@pytest.mark.parametrize("name", [n for n, _ in tarfuzz.seeds()])
def test_strict_rules_pass_valid_layers(name):
    assert tarfuzz.strict_rules(dict(tarfuzz.seeds())[name]) == []


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
