"""End-to-end copies with occystrap.api.copy_uris on the 64 MiB corpus (native core only).

Scenarios (one group each): tar->tar unchanged, tar->tar with
normalize-timestamps, tar->tar with exclude:pattern=*.pyc, tar->dir with
expand=true; plus a full ``check`` of the same image.  Each runs with one and
two layer workers (``parallel``).  Outputs go to a scratch dir on /dev/shm
when there is one, so the disk's write bandwidth does not set the figure;
every round writes a fresh output and the previous one is deleted first.
Verification stays on (the default), as in the CLI.  extra_info carries MB/s
of input image per second.
"""
import itertools
import os
import shutil

import pytest

from occystrap.api import copy_uris

SCENARIOS = {
    # group: (sink URI template, filter specs)
    "copy-tar": ("tar://{out}.tar", []),
    "copy-normalize": ("tar://{out}.tar", ["normalize-timestamps"]),
    "copy-exclude": ("tar://{out}.tar", ["exclude:pattern=*.pyc"]),
    "copy-expand": ("dir://{out}?expand=true", []),
}

ROUNDS = 5
_serial = itertools.count()


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


def _rate(benchmark, size):
    if benchmark.stats:         # None under --benchmark-disable
        benchmark.extra_info["MB_per_s"] = round(size / benchmark.stats.stats.mean / 1e6, 1)


@pytest.mark.parametrize("parallel", [1, 2])
@pytest.mark.parametrize("group", list(SCENARIOS))
def test_copy(benchmark, native_only, corpus, shm_tmp, group, parallel):
    template, filters = SCENARIOS[group]
    benchmark.group = group
    outputs = []

    def setup():
        for path in outputs:
            _remove(path)
        outputs.clear()
        base = os.path.join(shm_tmp, "%s-j%d-%d" % (group, parallel, next(_serial)))
        outputs.extend([base, base + ".tar"])
        return (), {"dst": template.format(out=base)}

    def run(dst):
        return copy_uris("tar://" + corpus, dst, filters, parallel=parallel, verify=True)

    report = benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    for path in outputs:
        _remove(path)
    assert report.layers == 4
    assert not report.verify_errors
    benchmark.extra_info["input_bytes"] = os.path.getsize(corpus)
    _rate(benchmark, os.path.getsize(corpus))


@pytest.mark.parametrize("parallel", [1, 2])
@pytest.mark.benchmark(group="check-full")
def test_check(benchmark, native_only, corpus, parallel):
    from occystrap.report.check import run_checks
    from occystrap.transports import open_source
    from occystrap.uri import parse_uri

    def run():
        with open_source(parse_uri("tar://" + corpus), {}) as image:
            return run_checks(image, fast=False, parallel=parallel)

    report = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    assert not report.has_errors
    _rate(benchmark, os.path.getsize(corpus))
