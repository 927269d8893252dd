"""Tests for occystrap.rootfs.expand: layer flattening with OCI whiteout semantics and path safety.

Layers are built with the stdlib tarfile module (an independent writer) into tmp_path.
"""
import errno
import io
import os
import stat
import tarfile

import pytest

from occystrap.rootfs import expand
from occystrap.errors import InputError, OutputError, UnsafePathError

MTIME = 1_600_000_000
IS_ROOT = os.geteuid() == 0


# -- layer building helpers -------------------------------------------------------------

def F(name, data=b"", mode=0o644, mtime=MTIME, **kw):
    return ("file", name, data, mode, mtime, kw)


def D(name, mode=0o755, mtime=MTIME, **kw):
    return ("dir", name, None, mode, mtime, kw)


def S(name, target, mtime=MTIME, **kw):
    return ("sym", name, target, 0o777, mtime, kw)


def H(name, target, **kw):
    return ("hard", name, target, 0o644, MTIME, kw)


def FIFO(name, mode=0o640, **kw):
    return ("fifo", name, None, mode, MTIME, kw)


def CHR(name, major, minor, mode=0o600, **kw):
    return ("chr", name, (major, minor), mode, MTIME, kw)


def WH(name):
    return F(name)


TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE,
         "hard": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}


def make_layer(path, entries, fmt=tarfile.PAX_FORMAT):
    with tarfile.open(path, "w", format=fmt) as tar:
        for kind, name, payload, mode, mtime, kw in entries:
            info = tarfile.TarInfo(name)
            info.type = TYPES[kind]
            info.mode = mode
            info.mtime = mtime
            info.uid = kw.get("uid", 0)
            info.gid = kw.get("gid", 0)
            if "pax" in kw:
                info.pax_headers = kw["pax"]
            data = None
            if kind == "file":
                info.size = len(payload)
                data = io.BytesIO(payload)
            elif kind in ("sym", "hard"):
                info.linkname = payload
            elif kind == "chr":
                info.devmajor, info.devminor = payload
            tar.addfile(info, data)
    return str(path)


class Layers:
    """Build numbered layers in tmp_path and expand them into tmp_path/root."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.root = tmp_path / "root"
        self.count = 0

    def layer(self, *entries, fmt=tarfile.PAX_FORMAT):
        self.count += 1
        return make_layer(self.tmp / ("layer%d.tar" % self.count), entries, fmt)

    def expand(self, *layers):
        return expand.expand_layers(list(layers), str(self.root))

    def run(self, *layer_entries):
        return self.expand(*[self.layer(*entries) for entries in layer_entries])

    def tree(self):
        """{relative path: kind} of everything under root."""
        result = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, self.root)
                st = os.lstat(full)
                result[rel] = ("link" if stat.S_ISLNK(st.st_mode) else
                               "dir" if stat.S_ISDIR(st.st_mode) else "file")
        return result


@pytest.fixture
def L(tmp_path):
    return Layers(tmp_path)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def outside_snapshot(tmp_path):
    """Every path under tmp_path except root/ and the layer tarballs."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(tmp_path):
        for name in dirnames + filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), tmp_path)
            if rel == "root" or rel.startswith("root" + os.sep) or rel.endswith(".tar"):
                continue
            seen.add(rel)
    return seen


# -- ordinary content -----------------------------------------------------------------

def test_files_dirs_links_and_stats(L):
    stats = L.run([D("etc"), F("etc/hosts", b"127.0.0.1 localhost\n"), D("bin"),
                   F("bin/busybox", b"\x7fELF...", mode=0o755), S("bin/sh", "busybox"),
                   H("bin/ls", "bin/busybox"), F("empty")])
    root = L.root
    assert read(root / "etc/hosts") == b"127.0.0.1 localhost\n"
    assert os.readlink(root / "bin/sh") == "busybox"
    assert os.path.samefile(root / "bin/ls", root / "bin/busybox")
    assert read(root / "empty") == b""
    assert stats["files"] == 3 and stats["dirs"] == 2
    assert stats["symlinks"] == 1 and stats["hardlinks"] == 1
    assert stats["bytes"] == len(b"127.0.0.1 localhost\n") + len(b"\x7fELF...")
    assert stats["whiteouts"] == 0 and stats["devices_skipped"] == 0


def test_leading_dot_slash_and_root_entry(L):
    L.run([D("./", mode=0o750, mtime=MTIME - 5), D("./usr"), F("./usr/x", b"x"),
           F("././y", b"y")])
    assert read(L.root / "usr/x") == b"x"
    assert read(L.root / "y") == b"y"
    st = os.stat(L.root)
    assert stat.S_IMODE(st.st_mode) == 0o750
    assert st.st_mtime == MTIME - 5


def test_modes_including_special_bits(L):
    L.run([F("suid", b"a", mode=0o4755), F("sgid", b"b", mode=0o2711),
           F("private", b"c", mode=0o600), D("tmp", mode=0o1777), D("ro", mode=0o555),
           F("ro/inside", b"d", mode=0o444), F("shared", b"e", mode=0o666),
           F("none", b"f", mode=0o000), F("sticky", b"g", mode=0o1644)])
    mode = lambda p: stat.S_IMODE(os.lstat(L.root / p).st_mode)  # noqa: E731
    assert mode("shared") == 0o666          # bits the umask would have masked
    assert mode("none") == 0o000
    assert mode("sticky") == 0o1644
    assert read(L.root / "none") == b"f"    # written although created without any bits
    assert mode("suid") == 0o4755
    assert mode("sgid") == 0o2711
    assert mode("private") == 0o600
    assert mode("tmp") == 0o1777
    assert mode("ro") == 0o555
    assert mode("ro/inside") == 0o444


def test_mtimes_on_files_symlinks_and_dirs(L):
    L.run([D("d", mtime=MTIME - 100), F("d/f", b"x", mtime=MTIME - 200),
           S("d/link", "f", mtime=MTIME - 300)],
          [F("d/later", b"y", mtime=MTIME - 400)])
    assert os.lstat(L.root / "d/f").st_mtime == MTIME - 200
    assert os.lstat(L.root / "d/link").st_mtime == MTIME - 300
    assert os.lstat(L.root / "d/later").st_mtime == MTIME - 400
    # a later layer created d/later, yet d keeps its declared mtime
    assert os.lstat(L.root / "d").st_mtime == MTIME - 100


def test_dir_redeclared_in_later_layer_takes_new_mode(L):
    L.run([D("d", mode=0o700), F("d/a", b"a")], [D("d", mode=0o711, mtime=MTIME - 7)])
    st = os.lstat(L.root / "d")
    assert stat.S_IMODE(st.st_mode) == 0o711 and st.st_mtime == MTIME - 7
    assert read(L.root / "d/a") == b"a"


def test_implicit_parents_are_0755(L):
    L.run([F("a/b/c/file", b"z", mode=0o600)])
    for rel in ("a", "a/b", "a/b/c"):
        assert stat.S_IMODE(os.lstat(L.root / rel).st_mode) == 0o755
    assert read(L.root / "a/b/c/file") == b"z"


def test_long_names_gnu_and_pax(L):
    deep = "/".join(["d%03d_%s" % (i, "x" * 40) for i in range(6)])
    name = deep + "/" + "f" * 150
    target = "t" * 120
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        layer = L.layer(F(name, b"long"), S("longlink", target), S(target, name), fmt=fmt)
        L.expand(layer)
        assert read(L.root / name) == b"long"
        assert os.readlink(L.root / "longlink") == target
        assert read(L.root / "longlink") == b"long"


def test_non_ascii_names(L):
    L.run([D("café"), F("café/naïve-日本.txt", "ünïcödé".encode()),
           S("café/λ", "naïve-日本.txt"), H("hård", "café/naïve-日本.txt")])
    assert read(L.root / "café/naïve-日本.txt") == "ünïcödé".encode()
    assert os.readlink(L.root / "café/λ") == "naïve-日本.txt"
    assert os.path.samefile(L.root / "hård", L.root / "café/naïve-日本.txt")


def _user_xattrs_supported(tmp_path):
    probe = tmp_path / "xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


def test_pax_xattrs(L, tmp_path):
    if not _user_xattrs_supported(tmp_path):
        pytest.skip("user.* xattrs not supported on this filesystem")
    L.run([D("d", pax={"SCHILY.xattr.user.dir": "dirval"}),
           F("d/f", b"data", pax={"SCHILY.xattr.user.one": "1",
                                  "SCHILY.xattr.user.two": "zwei"})])
    assert os.getxattr(L.root / "d/f", "user.one") == b"1"
    assert os.getxattr(L.root / "d/f", "user.two") == b"zwei"
    assert os.getxattr(L.root / "d", "user.dir") == b"dirval"
    assert read(L.root / "d/f") == b"data"


def test_unsupported_xattrs_are_ignored(L, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.ENOTSUP, "Operation not supported")
    monkeypatch.setattr(expand.os, "setxattr", refuse)
    L.run([F("f", b"x", pax={"SCHILY.xattr.user.x": "y"})])
    assert read(L.root / "f") == b"x"


@pytest.mark.skipif(not IS_ROOT, reason="ownership needs root")
def test_ownership_as_root(L):
    L.run([D("d", uid=1234, gid=4321), F("d/f", b"x", uid=1000, gid=1001, mode=0o4750),
           S("d/l", "f", uid=7, gid=8)])
    st = os.lstat(L.root / "d/f")
    assert (st.st_uid, st.st_gid) == (1000, 1001)
    assert stat.S_IMODE(st.st_mode) == 0o4750   # chown did not clear setuid
    assert (os.lstat(L.root / "d").st_uid, os.lstat(L.root / "d").st_gid) == (1234, 4321)
    assert (os.lstat(L.root / "d/l").st_uid, os.lstat(L.root / "d/l").st_gid) == (7, 8)


@pytest.mark.skipif(not IS_ROOT, reason="ownership needs root")
def test_ownership_when_a_later_layer_redeclares_or_replaces(L):
    """New entries owned 0:0 skip the chown; a kept directory and replaced entries still
    end up with the owner the last layer gives them."""
    L.run([D("d", uid=1000, gid=1000), F("d/f", b"x", uid=1000, gid=1000),
           S("d/l", "f", uid=1000, gid=1000), D("e", uid=5, gid=5)],
          [D("d"), F("d/f", b"y"), S("d/l", "f"), F("e", b"now a file")])
    for name in ("d", "d/f", "d/l", "e"):
        st = os.lstat(L.root / name)
        assert (st.st_uid, st.st_gid) == (0, 0), name
    assert read(L.root / "d/f") == b"y"


def test_setgid_root_still_chowns(tmp_path, monkeypatch):
    """Under a setgid root new entries inherit its group, so even 0:0 members chown."""
    root = tmp_path / "root"
    root.mkdir()
    os.chmod(root, 0o2755)
    monkeypatch.setattr(expand.os, "geteuid", lambda: 0)
    calls = []
    monkeypatch.setattr(expand.os, "fchown", lambda *a: calls.append(a))
    layer = make_layer(tmp_path / "l.tar", [F("f", b"x")])
    expand.expand_layers([layer], str(root))
    assert len(calls) == 1


def test_no_chown_when_not_root(L, monkeypatch):
    monkeypatch.setattr(expand.os, "geteuid", lambda: 1000)
    calls = []
    monkeypatch.setattr(expand.os, "lchown", lambda *a: calls.append(a))
    monkeypatch.setattr(expand.os, "fchown", lambda *a: calls.append(a))
    stats = L.run([F("f", b"x", uid=5), D("d", uid=5), CHR("null", 1, 3)])
    assert calls == []
    assert stats["devices_skipped"] == 1
    assert not os.path.lexists(L.root / "null")


def test_fifo_and_device(L):
    stats = L.run([FIFO("pipe", mode=0o640), CHR("dev/null", 1, 3, mode=0o666)])
    st = os.lstat(L.root / "pipe")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
    assert stats["fifos"] == 1
    if stats["devices"]:
        st = os.lstat(L.root / "dev/null")
        assert stat.S_ISCHR(st.st_mode)
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
        assert stat.S_IMODE(st.st_mode) == 0o666
    else:
        assert stats["devices_skipped"] == 1


def test_large_files_copied_exactly(L):
    big = os.urandom(5 * 1024 * 1024 + 123)
    other = os.urandom(70001)
    stats = L.run([F("big", big), F("small", b"between"), F("other", other)])
    assert read(L.root / "big") == big
    assert read(L.root / "small") == b"between"
    assert read(L.root / "other") == other
    assert stats["bytes"] == len(big) + len(other) + len(b"between")


@pytest.mark.parametrize("broken", [["copy_file_range"], ["copy_file_range", "sendfile"]])
def test_copy_fallbacks(L, monkeypatch, broken):
    def unsupported(*args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")
    for name in broken:
        monkeypatch.setattr(expand.os, name, unsupported)
    data = os.urandom(3 * 1024 * 1024 + 7)
    L.run([F("a", b"first"), F("big", data)])
    assert read(L.root / "a") == b"first"
    assert read(L.root / "big") == data


def test_duplicate_entries_last_wins(L):
    L.run([F("f", b"one"), F("f", b"two", mode=0o600)])
    assert read(L.root / "f") == b"two"
    assert stat.S_IMODE(os.lstat(L.root / "f").st_mode) == 0o600


def test_hardlink_to_itself_is_kept(L):
    L.run([F("f", b"x")], [H("f", "f")])
    assert read(L.root / "f") == b"x"


# -- whiteouts --------------------------------------------------------------------------

def test_whiteout_file_and_dir_tree(L):
    stats = L.run([D("a"), F("a/keep", b"k"), F("a/gone", b"g"), D("tree"), D("tree/sub"),
                   F("tree/sub/deep", b"d"), S("link", "a/keep")],
                  [WH("a/.wh.gone"), WH(".wh.tree"), WH(".wh.link")])
    assert L.tree() == {"a": "dir", "a/keep": "file"}
    assert stats["whiteouts"] == 3


def test_nested_whiteout(L):
    L.run([F("a/b/c", b"c"), F("a/b/d", b"d")], [WH("a/b/.wh.c")])
    assert L.tree() == {"a": "dir", "a/b": "dir", "a/b/d": "file"}


def test_whiteout_of_missing_target_is_ignored(L):
    stats = L.run([F("present", b"p")],
                  [WH(".wh.absent"), WH("nodir/.wh.x"), WH("present/.wh.y")])
    assert L.tree() == {"present": "file"}
    assert stats["whiteouts"] == 3


def test_whiteout_entries_never_extracted(L):
    L.run([WH(".wh.x"), WH("d/.wh..wh..opq"), F("d/f", b"f"), WH(".wh..wh.plnk")])
    assert L.tree() == {"d": "dir", "d/f": "file"}


def test_whiteout_then_readd_in_same_layer(L):
    L.run([D("d"), F("d/old", b"o")], [WH(".wh.d"), D("d"), F("d/new", b"n")])
    assert L.tree() == {"d": "dir", "d/new": "file"}


def test_whiteout_only_applies_to_lower_layers(L):
    # the whiteout precedes nothing in its own layer's order: the same-layer file stays
    L.run([F("x", b"lower")], [F("x", b"upper"), WH(".wh.x")])
    assert read(L.root / "x") == b"upper"


def test_whiteout_through_symlinked_parent(L):
    L.run([D("real"), F("real/f", b"f"), S("alias", "real")], [WH("alias/.wh.f")])
    assert L.tree() == {"real": "dir", "alias": "link"}


def test_opaque_dir_keeps_siblings_with_common_prefix(L):
    L.run([D("etc"), F("etc/old.conf", b"o"), D("etc/sub"), F("etc/sub/x", b"x"),
           D("etcetera"), F("etcetera/keep", b"k"), F("etc.conf", b"c")],
          [D("etc"), WH("etc/.wh..wh..opq"), F("etc/new.conf", b"n")])
    assert L.tree() == {"etc": "dir", "etc/new.conf": "file", "etcetera": "dir",
                        "etcetera/keep": "file", "etc.conf": "file"}


def test_opaque_same_layer_entries_survive_regardless_of_order(L):
    L.run([F("d/old", b"o")], [F("d/new", b"n"), WH("d/.wh..wh..opq"), F("d/newer", b"m")])
    assert L.tree() == {"d": "dir", "d/new": "file", "d/newer": "file"}


def test_nested_opaque(L):
    L.run([F("a/b/c/x", b"x"), F("a/b/y", b"y"), F("a/z", b"z")],
          [WH("a/b/.wh..wh..opq")])
    assert L.tree() == {"a": "dir", "a/b": "dir", "a/z": "file"}


def test_root_level_opaque_clears_lower_layers(L):
    L.run([F("a", b"a"), F("d/b", b"b"), S("l", "a")],
          [WH(".wh..wh..opq"), F("fresh", b"f")])
    assert L.tree() == {"fresh": "file"}


def test_opaque_of_missing_dir_is_ignored(L):
    L.run([F("a", b"a")], [WH("nothere/.wh..wh..opq"), F("nothere/x", b"x")])
    assert L.tree() == {"a": "file", "nothere": "dir", "nothere/x": "file"}


def test_opaque_dir_mode_of_cleared_children_not_applied(L):
    L.run([D("d/sub", mode=0o700)], [WH("d/.wh..wh..opq"), F("d/sub", b"now a file")])
    assert read(L.root / "d/sub") == b"now a file"
    assert stat.S_IMODE(os.lstat(L.root / "d/sub").st_mode) == 0o644


# -- replacement ------------------------------------------------------------------------

def test_file_over_dir_removes_tree(L):
    L.run([D("x", mode=0o700), F("x/a", b"a"), F("x/b/c", b"c")], [F("x", b"file now")])
    assert L.tree() == {"x": "file"}
    assert read(L.root / "x") == b"file now"
    assert stat.S_IMODE(os.lstat(L.root / "x").st_mode) == 0o644


def test_dir_over_dir_merges(L):
    L.run([D("x"), F("x/a", b"a")], [D("x", mode=0o750), F("x/b", b"b")])
    assert L.tree() == {"x": "dir", "x/a": "file", "x/b": "file"}
    assert stat.S_IMODE(os.lstat(L.root / "x").st_mode) == 0o750


def test_dir_over_file(L):
    L.run([F("x", b"file")], [D("x"), F("x/a", b"a")])
    assert L.tree() == {"x": "dir", "x/a": "file"}


def test_symlink_over_dir_and_file(L):
    L.run([D("d"), F("d/a", b"a"), F("f", b"f")], [S("d", "f"), S("f", "elsewhere")])
    assert L.tree() == {"d": "link", "f": "link"}
    assert os.readlink(L.root / "d") == "f"
    assert os.readlink(L.root / "f") == "elsewhere"


def test_file_over_symlink_replaces_the_link_not_its_target(L, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"original")
    L.run([S("evil", str(victim)), S("rel", "target"), F("target", b"t")],
          [F("evil", b"pwned"), F("rel", b"replaced")])
    assert victim.read_bytes() == b"original"
    assert read(L.root / "evil") == b"pwned"
    assert not os.path.islink(L.root / "evil")
    assert read(L.root / "target") == b"t"
    assert read(L.root / "rel") == b"replaced"


def test_dir_over_symlink_to_dir_replaces_link(L):
    L.run([D("real"), F("real/a", b"a"), S("d", "real")], [D("d"), F("d/b", b"b")])
    assert L.tree() == {"real": "dir", "real/a": "file", "d": "dir", "d/b": "file"}


def test_hardlink_over_existing_file(L):
    L.run([F("a", b"a"), F("b", b"b")], [H("b", "a")])
    assert os.path.samefile(L.root / "a", L.root / "b")


def test_parent_through_symlink_inside_root(L):
    L.run([D("usr/lib"), S("lib", "usr/lib"), S("lib64", "/usr/lib")],
          [F("lib/libc.so", b"c"), F("lib64/ld.so", b"ld")])
    assert read(L.root / "usr/lib/libc.so") == b"c"
    assert read(L.root / "usr/lib/ld.so") == b"ld"
    assert os.path.islink(L.root / "lib") and os.path.islink(L.root / "lib64")


def test_parent_that_is_a_file_is_an_input_error(L):
    with pytest.raises(InputError, match="not a directory"):
        L.run([F("f", b"x")], [F("f/child", b"y")])


def test_symlink_loop_is_an_input_error(L):
    with pytest.raises(InputError, match="symbolic links"):
        L.run([S("a", "b"), S("b", "a")], [F("a/x", b"x")])


# -- unsafe input -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../x", "/abs", "a/../../x", "a/../b", "./../x"])
def test_unsafe_member_names(L, tmp_path, name):
    before = outside_snapshot(tmp_path)
    layer = L.layer(F("ok", b"ok"), F(name, b"bad"))
    with pytest.raises(UnsafePathError):
        L.expand(layer)
    after = outside_snapshot(tmp_path)
    assert after == before
    assert not (tmp_path / "x").exists() and not os.path.exists("/abs")


@pytest.mark.parametrize("target", ["../..", "../../escape", "sub/../../..", "../"])
def test_symlink_parent_relative_escape(L, tmp_path, target):
    before = outside_snapshot(tmp_path)
    layer1 = L.layer(D("sub"), S("link", target))
    layer2 = L.layer(F("link/x", b"bad"))
    with pytest.raises(UnsafePathError, match="link/x escapes the image root via a symlink"):
        L.expand(layer1, layer2)
    assert outside_snapshot(tmp_path) == before


def test_symlink_parent_escape_in_same_layer(L, tmp_path):
    before = outside_snapshot(tmp_path)
    with pytest.raises(UnsafePathError, match="escapes the image root"):
        L.run([S("up", ".."), F("up/pwned", b"bad")])
    assert outside_snapshot(tmp_path) == before


def test_absolute_symlink_parent_is_rerooted(L, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    before = outside_snapshot(tmp_path)
    L.run([S("abs", str(outside)), S("slash", "/"), S("dots", "/../../..")],
          [F("abs/x", b"in root"), F("slash/y", b"y"), F("dots/z", b"z")])
    assert outside_snapshot(tmp_path) == before
    assert list(outside.iterdir()) == []
    assert read(str(L.root) + str(outside) + "/x") == b"in root"
    assert read(L.root / "y") == b"y"
    assert read(L.root / "z") == b"z"


def test_whiteout_through_escaping_symlink_is_refused(L, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"v")
    with pytest.raises(UnsafePathError):
        L.run([S("up", "..")], [WH("up/.wh.victim")])
    assert victim.read_bytes() == b"v"


def test_whiteout_through_absolute_symlink_stays_inside(L, tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"v")
    L.run([S("host", str(tmp_path))], [WH("host/.wh.victim")])
    assert victim.read_bytes() == b"v"


@pytest.mark.parametrize("target", ["../outside", "/etc/passwd", "a/../../x"])
def test_hardlink_outside_root(L, tmp_path, target):
    (tmp_path / "outside").write_bytes(b"secret")
    with pytest.raises(UnsafePathError):
        L.run([D("a"), H("stolen", target)])
    assert not os.path.lexists(L.root / "stolen")


def test_hardlink_through_escaping_symlink(L, tmp_path):
    (tmp_path / "secret").write_bytes(b"secret")
    with pytest.raises(UnsafePathError, match="escapes the image root"):
        L.run([S("up", "..")], [H("stolen", "up/secret")])
    assert not os.path.lexists(L.root / "stolen")


def test_hardlink_through_absolute_symlink_is_rerooted(L, tmp_path):
    (tmp_path / "secret").write_bytes(b"secret")
    with pytest.raises(InputError, match="does not exist"):
        L.run([S("host", str(tmp_path))], [H("stolen", "host/secret")])
    assert (tmp_path / "secret").stat().st_nlink == 1


def test_hardlink_to_missing_target(L):
    with pytest.raises(InputError, match="hardlink target nothere does not exist"):
        L.run([H("link", "nothere")])


def test_hardlink_to_symlink_links_the_symlink(L, tmp_path):
    L.run([S("s", str(tmp_path / "outside")), H("h", "s")])
    assert os.path.islink(L.root / "h")
    assert os.path.samestat(os.lstat(L.root / "h"), os.lstat(L.root / "s"))


def test_unsafe_entry_aborts_before_layer_is_applied(L):
    layer = L.layer(F("first", b"1"), F("../escape", b"bad"))
    with pytest.raises(UnsafePathError):
        L.expand(layer)
    assert not (L.root / "first").exists()


# -- bad input --------------------------------------------------------------------------

def test_missing_layer_file(L, tmp_path):
    with pytest.raises(InputError, match="cannot read layer"):
        L.expand(str(tmp_path / "nope.tar"))


def test_truncated_layer(L, tmp_path):
    path = L.layer(F("big", os.urandom(100000)))
    data = read(path)
    short = tmp_path / "short.tar"
    short.write_bytes(data[:50000])
    with pytest.raises(InputError):
        L.expand(str(short))


def test_unwritable_destination_is_output_error(L, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(OutputError):
        expand.expand_layers([L.layer(F("a", b"a"))], str(blocker / "root"))
