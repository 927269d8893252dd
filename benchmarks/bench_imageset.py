"""Multi-platform (index) copies with occystrap.api.copy_uris between two docker-registries.

The source is the two-platform image of benchmarks/multiarch_corpus.py (linux/amd64 and
linux/arm64, one shared base layer), pushed once per session into a source registry.
Groups:

* ``imageset-exact``: ``--platform all`` with no filter, the index and its blobs copied
  byte-exact (no decompression);
* ``imageset-normalize``: ``--platform all -f normalize-timestamps``, every child's
  layers rewritten and recompressed.

Each runs with one and two layer workers (``parallel``).  Every round copies into a
fresh docker-registry (blobs on /dev/shm when there is one), started in the untimed
setup, so no round finds blobs of an earlier one.  Size per platform:
OCCYSTRAP_BENCH_IMAGESET_MB (default 32); rounds: OCCYSTRAP_BENCH_IMAGESET_ROUNDS
(default 3); source index: OCCYSTRAP_BENCH_IMAGESET_FORMAT, "docker" (a manifest list,
default) or "oci" (an OCI image index).  Needs docker-registry on PATH (skipped
otherwise) and the native core.  extra_info carries MB/s of stored (compressed) source
bytes.
"""
import os
import sys

import pytest

from occystrap.api import copy_uris

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for _path in (HERE, os.path.join(REPO, "tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import peers  # noqa: E402

SIZE_MB = int(os.environ.get("OCCYSTRAP_BENCH_IMAGESET_MB", "32"))
ROUNDS = int(os.environ.get("OCCYSTRAP_BENCH_IMAGESET_ROUNDS", "3"))
INDEX_FORMAT = os.environ.get("OCCYSTRAP_BENCH_IMAGESET_FORMAT", "docker")   # or "oci"
GROUPS = {"imageset-exact": [], "imageset-normalize": ["normalize-timestamps"]}


def _registry(shm_tmp):
    from compare_imageset import ShmRegistry
    return ShmRegistry(shm_tmp).start()


@pytest.fixture(scope="session")
def imageset_source(native_only, shm_tmp):
    """(source registry, multiarch_corpus.build_index description), filled once."""
    if not peers.have("docker-registry"):
        pytest.skip("docker-registry is not installed")
    import multiarch_corpus
    registry = _registry(shm_tmp)
    try:
        info = multiarch_corpus.build_index(registry.url, SIZE_MB, index_format=INDEX_FORMAT)
        yield registry, info
    finally:
        registry.stop()


@pytest.mark.parametrize("parallel", [1, 2])
@pytest.mark.parametrize("group", list(GROUPS))
def test_imageset_copy(benchmark, imageset_source, shm_tmp, group, parallel):
    _source, info = imageset_source
    benchmark.group = group
    live = []

    def setup():
        while live:
            live.pop().stop()
        dst = _registry(shm_tmp)
        live.append(dst)
        return (), {"dst": "registry://%s/bench/dst:all" % dst.url}

    def run(dst):
        return copy_uris("registry://" + info["ref"], dst, GROUPS[group], parallel=parallel,
                         insecure=True, platform="all", verify=True)

    try:
        report = benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    finally:
        while live:
            live.pop().stop()
    # one result per layer of each platform (the shared layer counted in both)
    assert report.layers == sum(len(v) for v in info["layers"].values())
    assert not report.verify_errors
    benchmark.extra_info["source_bytes"] = info["bytes"]
    if benchmark.stats:         # None under --benchmark-disable
        benchmark.extra_info["MB_per_s"] = round(
            info["bytes"] / benchmark.stats.stats.mean / 1e6, 1)
