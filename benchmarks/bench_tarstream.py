"""Header codec throughput: tarstream.parse_header / format_header, both twins.

The inputs are the real header blocks of the 64 MiB corpus (every member's
ustar header, PAX headers included), so name lengths, prefixes and number
fields are as varied as in a real image.  extra_info reports headers/s.
"""
import pytest

from occystrap._native import tarstream_py



def header_blocks(layer):
    """Every 512-byte header block of an uncompressed layer, in order."""
    blocks = []
    view = memoryview(layer)
    offset = 0
    while offset + 512 <= len(layer):
        block = bytes(view[offset:offset + 512])
        header = tarstream_py.parse_header(block)
        if header is None:
            break
        blocks.append(block)
        offset += 512
        if tarstream_py.has_data(header.type[0]):
            offset += tarstream_py.padded(header.size)
    return blocks


@pytest.fixture(scope="module")
def blocks(corpus_layers):
    out = []
    for layer in corpus_layers:
        out.extend(header_blocks(layer))
    assert len(out) > 5000
    return out


@pytest.fixture(scope="module")
def headers(blocks):
    """Arguments for format_header, taken from the parsed corpus headers."""
    out = []
    for block in blocks:
        h = tarstream_py.parse_header(block)
        if tarstream_py.is_extension(h.type[0]):
            continue
        out.append((h.name, h.mode, h.uid, h.gid, h.size, h.mtime, h.type))
    return out


def _rate(benchmark, count):
    if benchmark.stats:         # None under --benchmark-disable
        benchmark.extra_info["headers_per_s"] = round(count / benchmark.stats.stats.mean)


def _parse_all(parse, blocks):
    n = 0
    for block in blocks:
        if parse(block) is not None:
            n += 1
    return n


def _format_all(fmt, headers):
    n = 0
    for name, mode, uid, gid, size, mtime, typeflag in headers:
        n += len(fmt(name, mode, uid, gid, size, mtime, typeflag))
    return n


@pytest.mark.benchmark(group="tarstream-parse")
def test_parse_header(benchmark, impl, blocks):
    parse = impl.tarstream.parse_header
    result = benchmark(_parse_all, parse, blocks)
    assert result == len(blocks)
    benchmark.extra_info["headers"] = len(blocks)
    _rate(benchmark, len(blocks))


@pytest.mark.benchmark(group="tarstream-format")
def test_format_header(benchmark, impl, headers):
    fmt = impl.tarstream.format_header
    result = benchmark(_format_all, fmt, headers)
    assert result >= 512 * len(headers)
    benchmark.extra_info["headers"] = len(headers)
    _rate(benchmark, len(headers))
