"""The streaming rewriter: both twins byte-identical, CPython tarfile as the oracle."""
import fnmatch
import io
import shutil
import subprocess
import tarfile

import pytest
from hypothesis import given, settings, strategies as st

from occystrap._native import tarstream_py
from occystrap._native._common import TarError
from occystrap._native.globset_py import normalize_name

pytestmark = pytest.mark.native

SEGMENTS = st.sampled_from(["etc", "usr", "lib", "tmp", "a.conf", "b.pyc", "ünï", "x" * 70,
                            ".wh.gone", "deep", "z"])
NAMES = st.tuples(st.sampled_from(["", "", "./", "/"]),
                  st.lists(SEGMENTS, min_size=1, max_size=5)).map(
    lambda parts: parts[0] + "/".join(parts[1]))
ENTRY = st.tuples(NAMES, st.sampled_from("fffdsl"), st.integers(0, 2000),
                  st.integers(0, 2 ** 33), st.booleans())
FORMATS = st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])


def build(entries, fmt):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for i, (name, kind, size, mtime, xattr) in enumerate(entries):
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            data = None
            if kind == "d":
                info.type = tarfile.DIRTYPE
            elif kind == "s":
                info.type, info.linkname = tarfile.SYMTYPE, "../" + name
            elif kind == "l" and i:
                info.type, info.linkname = tarfile.LNKTYPE, entries[0][0]
            else:
                info.size = size
                data = io.BytesIO(bytes([i % 251]) * size)
            if xattr and fmt == tarfile.PAX_FORMAT:
                info.pax_headers = {"SCHILY.xattr.user.k": "v%d" % i, "atime": "12.5",
                                    "ctime": "13.25"}
            tar.addfile(info, data)
    return buf.getvalue()


def run(twin, data, chunk, **kwargs):
    if kwargs.get("exclude") is not None:
        kwargs["exclude"] = twin.globset.GlobSet(kwargs["exclude"])
    rewriter = twin.rewrite.TarRewriter(**kwargs)
    out = bytearray()
    for i in range(0, len(data), chunk):
        out += rewriter.feed(data[i:i + chunk])
    out += rewriter.close()
    return bytes(out), rewriter


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


MODES = [dict(mtime=0), dict(mtime=1234567), dict(exclude=["*.pyc", "tmp"]),
         dict(mtime=7, exclude=["etc/*", "**/deep"], collect=True),
         dict(rewrite=False, collect=True), dict(collect=True),
         # the C scan keeps members no pattern matches without asking Python (_keep)
         dict(exclude=["*.conf", "usr", "./deep", "/tmp/*", "*.wh.*"]),
         dict(mtime=3, exclude=["**/z", "[!e]*/b.pyc", "lib"]),
         # normalize-timestamps mode=clamp: about half the mtimes (0..2**33) are later
         dict(mtime=2 ** 32, clamp=True), dict(mtime=13, clamp=True, collect=True),
         dict(mtime=2 ** 32, clamp=True, exclude=["*.pyc", "tmp"])]


@settings(max_examples=150)
@given(st.lists(ENTRY, max_size=25), FORMATS, st.sampled_from(range(len(MODES))),
       st.sampled_from([1, 100, 511, 512, 4096, 1 << 20]))
def test_twins_agree_and_tarfile_reads_output(twins, entries, fmt, mode, chunk):
    data = build(entries, fmt)
    results = [run(t, data, chunk, **dict(MODES[mode])) for t in twins]
    out, rewriter = results[0]
    for other_out, other in results[1:]:
        assert other_out == out
        assert other.members == rewriter.members
        assert (other.count, other.dropped) == (rewriter.count, rewriter.dropped)
    if MODES[mode].get("rewrite", True):
        assert len(out) % 10240 == 0
        kept = members(out)
        if MODES[mode].get("clamp") and "exclude" not in MODES[mode]:
            ts = MODES[mode]["mtime"]
            for before, after in zip(members(data), kept):
                assert after.mtime == min(int(before.mtime), ts)
                for key, value in before.pax_headers.items():
                    if key in ("atime", "ctime"):
                        assert (key in after.pax_headers) == (float(value) <= ts)
        elif MODES[mode].get("clamp"):
            assert all(m.mtime <= MODES[mode]["mtime"] for m in kept)
        elif "mtime" in MODES[mode]:
            assert all(m.mtime == MODES[mode]["mtime"] for m in kept)
            assert all("atime" not in m.pax_headers and "ctime" not in m.pax_headers
                       for m in kept)
            assert all(m.pax_headers.get("SCHILY.xattr.user.k", "v").startswith("v")
                       for m in kept)
        assert len(kept) == rewriter.count - rewriter.dropped


@settings(max_examples=100)
@given(st.lists(ENTRY, max_size=25), FORMATS)
def test_collected_members_match_tarfile(impl, entries, fmt):
    data = build(entries, fmt)
    _out, rewriter = run(impl, data, 777, rewrite=False, collect=True)
    oracle = members(data)
    assert [m.name.decode("utf-8", "surrogateescape") for m in rewriter.members] == \
        [m.name for m in oracle]
    assert [m.size for m in rewriter.members] == [m.size for m in oracle]
    assert [m.mtime for m in rewriter.members] == [int(m.mtime) for m in oracle]
    assert [m.linkname.decode() for m in rewriter.members] == [m.linkname for m in oracle]
    assert [m.type for m in rewriter.members] == [m.type for m in oracle]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_exclude_decisions_on_awkward_names(twins, fmt):
    """Names the C scan normalizes itself before matching (leading ./ and /, trailing /,
    whiteouts, ustar prefix fields, hard links): both twins drop exactly the same."""
    names = ["keep/me", "./deep", "/deep", "deep/", "./tmp/x", "//tmp/y", "etc/.wh.a.conf",
             "a.conf", "./a.conf", "d" * 120 + "/a.conf", "d" * 120 + "/kept", "x/deep"]
    entries = [(name, "f", 3, 5, False) for name in names] + [("link", "l", 0, 5, False)]
    data = build(entries, fmt)
    patterns = ["./deep", "/tmp/*", "*.conf", "**/deep", "a.conf"]
    results = [run(t, data, 1 << 20, exclude=patterns) for t in twins]
    out, rewriter = results[0]
    kept = [m.name for m in members(out)]
    assert set(kept) == {"keep/me", "d" * 120 + "/kept", "etc/.wh.a.conf", "link"}
    for other_out, other in results[1:]:
        assert other_out == out
        assert (other.count, other.dropped) == (rewriter.count, rewriter.dropped)


@pytest.mark.parametrize("pattern", [".*", "?"])
def test_exclude_on_the_root_entry_agrees(twins, pattern):
    """A "./" root directory normalizes to "." in _keep (trailing "/" first): the C scan
    must not decide it from its own "" (found in review: the twins disagreed)."""
    data = build([("./", "d", 0, 5, False), ("./a", "f", 3, 5, False),
                  ("./.b", "f", 3, 5, False)], tarfile.PAX_FORMAT)
    results = [run(t, data, 1 << 20, exclude=[pattern]) for t in twins]
    out, rewriter = results[0]
    assert rewriter.dropped == 2                # "." and ".b" (or "." and "a")
    for other_out, other in results[1:]:
        assert other_out == out
        assert (other.count, other.dropped) == (rewriter.count, rewriter.dropped)


def test_plain_copy_is_identity_until_end_blocks(impl):
    data = build([("etc/a.conf", "f", 700, 5, False), ("etc", "d", 0, 5, False)],
                 tarfile.PAX_FORMAT)
    out, _ = run(impl, data, 100)
    assert out == data


def test_exclude_semantics(impl):
    entries = [("etc/a.conf", "f", 3, 1, False), ("tmp", "d", 0, 1, False),
               ("tmp/x", "f", 3, 1, False), ("tmp/sub/y", "f", 3, 1, False),
               ("tmpfile", "f", 3, 1, False), ("etc/.wh.b.conf", "f", 0, 1, False),
               ("app/.git/config", "f", 3, 1, False), (".git/HEAD", "f", 3, 1, False),
               ("link", "l", 0, 1, False)]
    data = build(entries, tarfile.PAX_FORMAT)
    out, rewriter = run(impl, data, 4096, exclude=["/tmp", "*.conf", "**/.git/*"])
    names = [m.name for m in members(out)]
    # a leading / is ignored; the dir takes its subtree; tmpfile is only a prefix match;
    # the whiteout stays; **/ matches at the top level too; the hard link to the
    # dropped etc/a.conf goes with it.
    assert names == ["tmpfile", "etc/.wh.b.conf"]
    assert rewriter.dropped == 7


def test_whiteouts_survive_any_pattern(impl):
    data = build([("a/.wh.b", "f", 0, 1, False), ("a/.wh..wh..opq", "f", 0, 1, False)],
                 tarfile.PAX_FORMAT)
    out, _ = run(impl, data, 512, exclude=["*"])
    assert [m.name for m in members(out)] == ["a/.wh.b", "a/.wh..wh..opq"]


@pytest.mark.parametrize("cut", [100, 512, 700, 1536])
def test_truncated_stream_is_an_error(impl, cut):
    data = build([("big", "f", 2000, 1, False)], tarfile.PAX_FORMAT)
    rewriter = impl.rewrite.TarRewriter(mtime=0)
    rewriter.feed(data[:cut])
    with pytest.raises(TarError, match="truncated"):
        rewriter.close()


def test_garbage_is_an_error(impl):
    rewriter = impl.rewrite.TarRewriter(mtime=0)
    with pytest.raises(TarError, match="checksum"):
        rewriter.feed(b"\x7fELF" + bytes(range(256)) * 4)


def test_gnu_longname_pass_through(impl):
    name = "n" * 300
    data = build([(name, "f", 10, 99, False)], tarfile.GNU_FORMAT)
    out, _ = run(impl, data, 64, mtime=0)
    (member,) = members(out)
    assert member.name == name and member.mtime == 0


def _sparse_file(path):
    # 30 data runs with holes between them: GNU tar needs extension blocks for the
    # old-style map (4 entries fit in the header, 21 per extension block).
    with open(path, "wb") as f:
        for i in range(30):
            f.seek(i * 65536)
            f.write(b"%02d" % i * 50)
        f.truncate(30 * 65536 + 4096)


def _gnu_tar(tmp_path, *options):
    tar = shutil.which("tar")
    if not tar or b"GNU tar" not in subprocess.run([tar, "--version"],
                                                   capture_output=True).stdout:
        pytest.skip("GNU tar is not installed")
    _sparse_file(tmp_path / "holes")
    subprocess.run([tar, "--sparse", "-cf", "layer.tar", *options, "holes"], cwd=tmp_path,
                   check=True)
    return (tmp_path / "layer.tar").read_bytes()


def _handmade_old_sparse(_tmp_path):
    from tests.tarfuzz import END, member, sparse_member
    return (sparse_member(b"holes", [(i * 65536, b"%02d" % i * 50) for i in range(30)],
                          30 * 65536 + 4096) + member(b"after", b"x") + END)


SPARSE_LAYERS = {
    "old-gnu-handmade": _handmade_old_sparse,
    "old-gnu-tar": lambda tmp: _gnu_tar(tmp, "--format=gnu"),
    "pax-0.1-gnu-tar": lambda tmp: _gnu_tar(tmp, "--format=posix", "--sparse-version=0.1"),
    "pax-1.0-gnu-tar": lambda tmp: _gnu_tar(tmp, "--format=posix", "--sparse-version=1.0"),
}


@pytest.mark.parametrize("kind", sorted(SPARSE_LAYERS))
@pytest.mark.parametrize("chunk", [1 << 20, 511])
def test_sparse_member_survives_byte_for_byte(impl, tmp_path, kind, chunk):
    data = SPARSE_LAYERS[kind](tmp_path)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        (info,) = [m for m in tar.getmembers() if m.name == "holes"]
        expected = tar.extractfile(info).read()
        assert info.sparse and len(info.sparse) >= 26        # the map needs extension blocks
        end = tar.offset                                       # where the members end
    if kind.startswith("old"):
        assert data[info.offset + 156:info.offset + 157] == b"S" and data[info.offset + 482]
    # A plain copy is the input itself up to the end-of-archive blocks.
    out, _ = run(impl, data, chunk)
    assert out[:end] == data[:end]
    # normalize-timestamps touches only header mtimes (and GNU atime/ctime, PAX time
    # records): the sparse map, its extension blocks and the data are kept as they are.
    out, _ = run(impl, data, chunk, mtime=0)
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        (again,) = [m for m in tar.getmembers() if m.name == "holes"]
        assert again.sparse == info.sparse and again.size == info.size
        assert again.mtime == 0 and "atime" not in again.pax_headers
        assert tar.extractfile(again).read() == expected
    body = data[info.offset_data:info.offset_data + sum(n for _o, n in info.sparse)]
    assert body and body in out
    if kind.startswith("old"):
        first = data[info.offset:info.offset + 512]
        ext_blocks = data[info.offset + 512:info.offset_data]
        assert len(ext_blocks) >= 512 and ext_blocks in out
        patched = out[out.index(ext_blocks) - 512:out.index(ext_blocks)]
        changed = [i for i in range(512) if patched[i] != first[i]]
        assert all(136 <= i < 156 or 345 <= i < 369 for i in changed), changed


@settings(max_examples=300)
@given(st.text(alphabet="ab*?[]!-/.^\\", max_size=8),
       st.sampled_from(["", "a", "b", "ab", "a/b", "]", "-", "!", "a]", "[", ".", "b-a", "^"]))
def test_globset_matches_fnmatch(twins, pattern, name):
    # patterns are normalized like member names (no leading ./ or /, no trailing /)
    normalized = normalize_name(pattern.encode())
    if not normalized or normalized.startswith(b"**/"):
        return
    expected = fnmatch.fnmatchcase(name.encode(), normalized)
    for twin in twins:
        assert twin.globset.GlobSet([pattern]).match(name.encode()) == expected, twin.name


def test_global_pax_timestamps_are_normalized(impl):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"mtime": "1234.5", "comment": "kept"}) as tar:
        info = tarfile.TarInfo("a")
        info.mtime = 99
        tar.addfile(info)
    out, _ = run(impl, buf.getvalue(), 100, mtime=0)
    with tarfile.open(fileobj=io.BytesIO(out)) as tar:
        (member,) = tar.getmembers()
        assert member.mtime == 0
        assert tar.pax_headers == {"comment": "kept"}


def _solaris_x_layer():
    """A Solaris X extended header (a per-member PAX header to tarfile, GNU tar and
    libarchive) naming the next member a.pyc with an mtime."""
    records = tarstream_py.format_pax([(b"path", b"a.pyc"), (b"mtime", b"1234567")])
    head = bytearray(tarstream_py.format_header(b"././@PaxHeader", 0o644, 0, 0, len(records),
                                                0, b"X"))
    member = tarstream_py.format_header(b"ok.txt", 0o644, 0, 0, 2, 99, b"0")
    return bytes(head) + records + bytes(-len(records) % 512) + member + b"hi" + \
        bytes(510) + bytes(1024)


def _feed(impl, data, **kwargs):
    rewriter = impl.rewrite.TarRewriter(**kwargs)
    out = bytearray()
    for i in range(0, len(data), 512):
        out += rewriter.feed(data[i:i + 512])
    return bytes(out + rewriter.close()), rewriter


def test_solaris_x_header_applies_to_the_next_member(impl):
    data = _solaris_x_layer()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert [(m.name, int(m.mtime)) for m in tar] == [("a.pyc", 1234567)]
    _out, parsed = _feed(impl, data, rewrite=False, collect=True)
    assert [(m.name, m.mtime) for m in parsed.members] == [(b"a.pyc", 1234567)]
    out, excluded = _feed(impl, data, exclude=impl.globset.GlobSet([b"*.pyc"]))
    assert (excluded.count, excluded.dropped) == (1, 1)
    assert members(out) == []
    out, _normalized = _feed(impl, data, mtime=0)
    assert [(m.name, m.mtime) for m in members(out)] == [("a.pyc", 0)]


def test_a_globset_subclass_decides(impl):
    class NoCase(impl.globset.GlobSet):
        def match(self, name):
            return super().match(name.lower())

    data = build([("X.PYC", "f", 1, 0, False), ("keep", "f", 1, 0, False)],
                 tarfile.GNU_FORMAT)
    assert _feed(impl, data, exclude=NoCase([b"*.pyc"]))[1].dropped == 1


@pytest.mark.parametrize("call", ["checksum", "set_checksum", "format_number"])
def test_short_buffers_are_refused(impl, call):
    with pytest.raises((TarError, ValueError)):
        if call == "checksum":
            impl.tarstream.checksum(b"abc")
        elif call == "set_checksum":
            impl.tarstream.set_checksum(bytearray(160))
        else:
            impl.tarstream.format_number(0, 0)


def test_clamp_keeps_older_members_byte_for_byte(impl):
    """mode=clamp changes only what is later than ts: a layer with nothing later comes
    out as it went in (but for the end-of-archive padding)."""
    data = build([("etc/a.conf", "f", 10, 5, True), ("usr", "d", 0, 99, False),
                  ("lib/z", "s", 0, 100, False)], tarfile.PAX_FORMAT)
    out, rewriter = run(impl, data, 512, mtime=100, clamp=True, collect=True)
    end = len(data.rstrip(b"\0"))
    assert out[:end] == data[:end]
    assert [m.mtime for m in rewriter.members] == [5, 99, 100]


@pytest.mark.parametrize("value, ts, dropped", [
    (b"10.5", 10, True), (b"10", 10, False), (b"10.000", 10, False), (b"9.99", 10, False),
    (b"11", 10, True), (b"-12.5", -13, True), (b"-12.5", -12, False)])
def test_clamp_drops_only_later_pax_times(impl, value, ts, dropped):
    """A PAX mtime/atime later than ts goes, fractions included ("10.5" is after 10); the
    member header then gets ts."""
    records = tarstream_py.format_pax([(b"mtime", value), (b"atime", value),
                                       (b"comment", b"kept")])
    pax = tarstream_py.format_header(b"././@PaxHeader", 0, 0, 0, len(records), 0, b"x")
    data = (pax + records + bytes(tarstream_py.padded(len(records)) - len(records))
            + tarstream_py.format_header(b"a", 0o644, 0, 0, 0, 11, b"0") + bytes(1024))
    out, rewriter = run(impl, data, 100, mtime=ts, clamp=True, collect=True)
    (member,) = members(out)
    assert member.pax_headers["comment"] == "kept"
    assert ("mtime" in member.pax_headers) == (not dropped)
    assert ("atime" in member.pax_headers) == (not dropped)
    assert member.mtime == (ts if dropped else float(value))
    assert rewriter.members[0].mtime == min(tarstream_py.pax_time(value, 0, len(value)), ts)
