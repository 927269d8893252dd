"""TarRewriter throughput over a layer held in memory, both twins.

Operations (one benchmark group each):

* rewrite-scan:      ``TarRewriter(rewrite=False)``: parse and validate only
                     (what check / search / inspect do per layer);
* rewrite-normalize: ``TarRewriter(mtime=0)`` (normalize-timestamps);
* rewrite-exclude:   ``TarRewriter(exclude=GlobSet([b"*.pyc"]))``.

Inputs (the ``layer`` parameter):

* ``corpus``: layer 0 of the 64 MiB corpus (16 MiB; site-packages-like tree
  plus big binaries, i.e. a realistic mix of headers and bulk data);
* ``small-files``: the header-dense layer of the small corpus (~12k members
  of a few hundred bytes), the worst case for per-member overhead.

The layer is fed in 1 MiB chunks like the layer pipeline does.  Both twins
get the same bytes, so their timings compare directly; extra_info carries
MB/s (10^6 bytes of input per second) and members/s.
"""
import pytest

CHUNK = 1 << 20


@pytest.fixture(scope="module", params=["corpus", "small-files"])
def layer(request):
    if request.param == "corpus":
        data = request.getfixturevalue("corpus_layers")[0]
    else:
        data = request.getfixturevalue("small_corpus_layers")[0]
    return [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]


def _run(make, chunks):
    rewriter = make()
    out = 0
    for chunk in chunks:
        out += len(rewriter.feed(chunk))
    out += len(rewriter.close())
    return rewriter, out


def _bench(benchmark, make, chunks):
    rewriter, out = benchmark(_run, make, chunks)
    size = sum(len(c) for c in chunks)
    benchmark.extra_info["input_bytes"] = size
    benchmark.extra_info["members"] = rewriter.count
    if benchmark.stats:         # None under --benchmark-disable
        mean = benchmark.stats.stats.mean
        benchmark.extra_info["MB_per_s"] = round(size / mean / 1e6, 1)
        benchmark.extra_info["members_per_s"] = round(rewriter.count / mean)
    return rewriter, out, size


@pytest.mark.benchmark(group="rewrite-scan")
def test_scan(benchmark, impl, layer):
    rewriter, out, size = _bench(
        benchmark, lambda: impl.rewrite.TarRewriter(rewrite=False), layer)
    assert out == 0 and rewriter.count > 100


@pytest.mark.benchmark(group="rewrite-normalize")
def test_normalize(benchmark, impl, layer):
    rewriter, out, size = _bench(
        benchmark, lambda: impl.rewrite.TarRewriter(mtime=0), layer)
    assert out > 0.9 * size and rewriter.dropped == 0


@pytest.mark.benchmark(group="rewrite-exclude")
def test_exclude(benchmark, impl, layer):
    globs = impl.globset.GlobSet([b"*.pyc"])
    rewriter, out, size = _bench(
        benchmark, lambda: impl.rewrite.TarRewriter(exclude=globs), layer)
    assert 0 < out < size and rewriter.dropped > 0
