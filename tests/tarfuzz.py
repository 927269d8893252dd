"""Differential fuzzing of the native tar core: both twins and CPython tarfile.

Seed layers (every member kind, GNU long names, PAX records, old GNU sparse maps with
extension blocks, PAX sparse, global headers, v7 members) are mutated (bit flips, hostile
header fields, truncations, PAX/GNU extension abuse, sparse maps, zero blocks, garbage
after the end).  `check(data)` feeds one input to both twins at several chunkings in
every MODE and returns the rules it broke:

  chunking   one twin gives different results for different chunkings of one input
  twins      the twins differ (output bytes, members, counts, error class or message)
  exception  a twin raised something other than TarError
  hang       a twin did not finish (in-process alarm; a C loop is killed by Worker)
  crash      the worker process died (segfault, abort): reported by Worker
  reparse    a rewritten layer does not parse back with the members it should have
  oracle-*   CPython tarfile (the oracle for WHAT A MEMBER IS) disagrees: members
             differ, tarfile refuses what we accept, or we refuse what tarfile reads
             without one of the stricter rules in STRICT_RULES being hit

`Worker` runs `check` in a child process with a timeout, so a segfault or a C loop
is a report, not the end of the run.  `python -m tests.tarfuzz` runs a bounded,
deterministic campaign (see docs/robustness.md) and saves what fails.
"""
import hashlib
import io
import math
import multiprocessing
import os
import random
import re
import signal
import sys
import tarfile
import time

from tests.twins import Twin

KiB, MiB = 1024, 1024 * 1024
CAP = 1 * MiB                       # our limit on extended data (issue 8)
MAX_SIZE = 2 ** 60                  # our limit on a member size (padding cannot overflow)
INT64_MAX = 2 ** 63 - 1
CORPUS = os.path.join(os.path.dirname(__file__), "data", "fuzz-corpus")
PATTERNS = [b"*.pyc", b"tmp", b"**/cache", b"./d*/f*"]
MODES = {
    "parse": dict(rewrite=False, collect=True),
    "copy": dict(),
    "normalize": dict(mtime=0),
    "exclude": dict(exclude=PATTERNS),
    "normalize+exclude": dict(mtime=0, exclude=PATTERNS),
    # mode=clamp at the generators' usual mtime: 1700000000.75 is after it, -1 before
    "clamp": dict(mtime=1700000000, clamp=True, collect=True),
}
ONE_BYTE_MAX = 2048                 # 1-byte chunking only for inputs up to this size
HANG_SECONDS = 5


# -----------------------------------------------------------------------------------
# Building blocks: headers written byte by byte (not with the code under test)

def checksum(block):
    return sum(block[:148]) + 256 + sum(block[156:512])


def fix_checksum(data, at):
    block = data[at:at + 512]
    data[at + 148:at + 156] = b"%06o\0 " % checksum(block)


def octal(value, width):
    return b"%0*o\0" % (width - 1, value)


def header(name=b"f", kind=b"0", size=0, mode=0o644, uid=0, gid=0, mtime=1700000000,
           linkname=b"", magic=b"ustar\x0000", prefix=b"", devmajor=0, devminor=0,
           raw=None):
    block = bytearray(512)
    block[0:len(name[:100])] = name[:100]
    block[100:108] = octal(mode, 8)
    block[108:116] = octal(uid, 8)
    block[116:124] = octal(gid, 8)
    block[124:136] = octal(size, 12)
    block[136:148] = octal(mtime, 12)
    block[156:157] = kind
    block[157:157 + len(linkname[:100])] = linkname[:100]
    block[257:265] = magic
    block[265:269] = b"root"
    block[297:301] = b"root"
    block[329:337] = octal(devmajor, 8)
    block[337:345] = octal(devminor, 8)
    block[345:345 + len(prefix)] = prefix
    for at, value in (raw or {}).items():
        block[at:at + len(value)] = value
    assert len(block) == 512
    fix_checksum(block, 0)
    return bytes(block)


def pad(data):
    return bytes(data) + bytes(-len(data) % 512)


def member(name, data=b"", kind=b"0", **kw):
    return header(name, kind, len(data), **kw) + pad(data)


def pax_records(records):
    out = bytearray()
    for key, value in records:
        body = len(key) + len(value) + 3
        length = body + len(str(body))
        if len(str(length)) != len(str(body)):
            length += 1
        out += b"%d %s=%s\n" % (length, key, value)
    return bytes(out)


def ext(kind, data, name=b"././@PaxHeader", padding=None):
    """An extended header (x, g, L, K) with its data; `padding` replaces the zeros."""
    if kind in (b"L", b"K"):
        name = b"././@LongLink"
    tail = bytes(-len(data) % 512) if padding is None else padding[:-len(data) % 512]
    return header(name, kind, len(data), mode=0, mtime=0) + bytes(data) + tail


def pax(records, kind=b"x"):
    return ext(kind, pax_records(records))


def sparse_member(name, chunks, realsize, ext_blocks=(), magic=b"ustar  \0"):
    """An old-style GNU sparse member ('S'): up to 4 map entries in the header, the
    rest in extension blocks of 21; `chunks` are (offset, bytes) pairs."""
    entries = [(offset, len(data)) for offset, data in chunks]
    stored = b"".join(data for _, data in chunks)
    head = bytearray(header(name, b"S", len(stored), magic=magic))
    for i, (offset, size) in enumerate(entries[:4]):
        head[386 + 24 * i:398 + 24 * i] = octal(offset, 12)
        head[398 + 24 * i:410 + 24 * i] = octal(size, 12)
    rest = list(entries[4:]) + list(ext_blocks)
    head[482] = 1 if rest else 0
    head[483:495] = octal(realsize, 12)
    fix_checksum(head, 0)
    blocks = bytearray()
    while rest:
        block = bytearray(512)
        for i, (offset, size) in enumerate(rest[:21]):
            block[24 * i:24 * i + 12] = octal(offset, 12)
            block[24 * i + 12:24 * i + 24] = octal(size, 12)
        rest = rest[21:]
        block[504] = 1 if rest else 0
        blocks += block
    return bytes(head) + bytes(blocks) + pad(stored)


END = bytes(1024)


def _tarfile_layer(fmt, entries, pax_headers=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax_headers) as tar:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid = 1700000000, 1000, 100
            data = None
            if kind == "f":
                payload = extra or b"hello\n"
                info.size = len(payload)
                data = io.BytesIO(payload)
            elif kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "s":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind in "cb":
                info.type = tarfile.CHRTYPE if kind == "c" else tarfile.BLKTYPE
                info.devmajor, info.devminor = 1, 3
            elif kind == "p":
                info.type = tarfile.FIFOTYPE
            elif kind == "x":        # PAX extras: xattrs, big ids, fractional mtime
                info.size = 3
                data = io.BytesIO(b"abc")
                info.pax_headers = {"SCHILY.xattr.user.k": "v\x01", "atime": "12.5"}
                info.uid, info.mtime = 2 ** 40, 1700000000.75
            elif kind == "n":        # GNU: base-256 numbers
                info.size = 2
                data = io.BytesIO(b"ab")
                info.uid, info.mtime = 2 ** 40, -1
            tar.addfile(info, data)
    return buf.getvalue()


COMMON = [("etc", "d", None), ("etc/passwd", "f", None), ("tmp", "d", None),
          ("tmp/x.pyc", "f", b"\0" * 600), ("lib/a.pyc", "f", None),
          ("bin/sh", "s", "busybox"), ("bin/ls", "h", "etc/passwd"),
          ("dev/null", "c", None), ("dev/sda", "b", None), ("run/fifo", "p", None),
          ("usr/share/cache/" + "long" * 30 + "/f", "f", None),
          ("lnk", "s", "t" * 150)]


def seeds():
    """(name, bytes) pairs: valid layers every check must pass on."""
    out = [
        ("gnu", _tarfile_layer(tarfile.GNU_FORMAT, COMMON + [("nums", "n", None)])),
        ("pax", _tarfile_layer(tarfile.PAX_FORMAT, COMMON + [("x/attrs", "x", None)])),
        ("ustar", _tarfile_layer(tarfile.USTAR_FORMAT, COMMON[:10] + [
            ("p" * 120 + "/leaf", "f", None)])),
        ("global", _tarfile_layer(tarfile.PAX_FORMAT, COMMON[:4],
                                  pax_headers={"comment": "hi"})),
    ]
    v7 = b"".join([
        member(b"./", kind=b"\0", magic=bytes(8)), member(b"./dir/", kind=b"\0"),
        member(b"./dir/file", b"data" * 50, kind=b"\0", magic=bytes(8)),
        member(b"dir2/", kind=b"5"), member(b"/abs//", kind=b"5"),
        member(b"tmp/", kind=b"\0"), member(b"tmp/y", b"y"),
    ])
    out.append(("v7", v7 + END))
    chained = b"".join([
        ext(b"L", b"d/" + b"L" * 200 + b"\0"), ext(b"K", b"k" * 120 + b"\0"),
        member(b"short", kind=b"2"),
        ext(b"L", b"y" * 130 + b"\0"), member(b"short2", b"zz"),
        pax([(b"path", b"p" * 110)]), pax([(b"linkpath", b"l" * 110), (b"uid", b"7")]),
        member(b"sym", kind=b"2"),
        ext(b"K", b"g" * 101 + b"\0"), pax([(b"path", b"pax/cache")]),
        member(b"ignored", kind=b"1", linkname=b"short2"),
        pax([(b"size", b"700"), (b"mtime", b"-12.5"), (b"gid", b"42"),
             (b"SCHILY.xattr.security.capability", b"\x01\0\0\x02")]),
        header(b"sized-by-pax", b"0", 0) + pad(b"s" * 700),
        pax([(b"mtime", b"1700000000.999999999"), (b"uid", b"4294967296")]),
        member(b"dir/", kind=b"5"),
    ])
    out.append(("chained", chained + END))
    sparse = b"".join([
        sparse_member(b"sparse/small", [(0, b"a" * 10), (4096, b"b" * 5)], 8192),
        sparse_member(b"sparse/ext", [(i * 1024, b"%d" % i) for i in range(30)], 40000),
        sparse_member(b"sparse/ustar", [(512, b"u")], 1024, magic=b"ustar\x0000"),
        member(b"after", b"x"),
    ])
    out.append(("sparse", sparse + END))
    pax_sparse = b"".join([
        pax([(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"),
             (b"GNU.sparse.name", b"real/name"), (b"GNU.sparse.realsize", b"4096")]),
        member(b"./GNUSparseFile.1/name", pad(b"1\n0\n3\n") + b"abc"),
        pax([(b"GNU.sparse.size", b"2048"), (b"GNU.sparse.numblocks", b"1"),
             (b"GNU.sparse.offset", b"0"), (b"GNU.sparse.numbytes", b"2"),
             (b"GNU.sparse.map", b"0,2"), (b"GNU.sparse.name", b"zero/one")]),
        member(b"./GNUSparseFile.0/one", b"hi"),
    ])
    out.append(("paxsparse", pax_sparse + END))
    return out


# -----------------------------------------------------------------------------------
# Walking an archive the way tarfile does (for mutators and the rule classifier)

def lenient_number(field):
    """tarfile's nti(); None where tarfile raises."""
    if field[0] in (0x80, 0xFF):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[0] == 0xFF else value
    try:
        text = field.split(b"\0", 1)[0].decode("ascii")
        return int(text.strip() or "0", 8)
    except ValueError:
        return None


def tarfile_checksum_ok(block):
    stored = lenient_number(block[148:156])
    signed = 256 + sum(b - 256 if b > 127 else b for b in block[:148] + block[156:512])
    return stored in (checksum(block), signed)


def walk(data):
    """Header offsets as tarfile's structure would find them: [(offset, kind, size)].
    Stops at a zero block, the end, or a header tarfile would not read."""
    out = []
    pos = 0
    while pos + 512 <= len(data):
        block = data[pos:pos + 512]
        if block.count(0) == 512 or not tarfile_checksum_ok(block):
            break
        size = lenient_number(block[124:136])
        if size is None:
            break
        kind = block[156:157]
        out.append((pos, kind, size))
        pos += 512
        if kind == b"S" and block[482]:
            while pos + 512 <= len(data):
                more = data[pos + 504]
                pos += 512
                if not more:
                    break
        name = block[0:100].split(b"\0", 1)[0]
        if kind in b"123456" and kind != b"" or (kind == b"\0" and name.endswith(b"/")):
            continue
        pos += max(size, 0) + (-max(size, 0) % 512)
    return out


# -----------------------------------------------------------------------------------
# Mutators: each takes (rng, data) and returns (tag, new data)

FIELDS = {"name": (0, 100), "mode": (100, 8), "uid": (108, 8), "gid": (116, 8),
          "size": (124, 12), "mtime": (136, 12), "chksum": (148, 8), "type": (156, 1),
          "linkname": (157, 100), "magic": (257, 8), "devmajor": (329, 8),
          "prefix": (345, 155), "sparse": (386, 24), "isextended": (482, 1),
          "realsize": (483, 12)}


def b256(value, width, first=None):
    raw = (value % 256 ** (width - 1)).to_bytes(width - 1, "big")
    if first is None:
        first = 0xFF if value < 0 else 0x80
    return bytes([first]) + raw


def hostile_numbers(width):
    text = [b"0o644", b"+0", b"+7", b"1_0", b"-5", b"-0", b"\t12", b"12\t", b" 12 ", b"",
            b"8", b"9", b"0x10", b"1e3", b" ", b"7" * (width - 1), b"7" * width,
            b"12\x0099", b"\x0012", b"0" * (width - 1) + b"\0", b"00000000644 ", b"\xd9\xa3",
            b"77777777777" if width == 12 else b"7777777"]
    numbers = [0, 1, 512, 2 ** 24, 2 ** 31, 2 ** 32, INT64_MAX, 2 ** 63, 2 ** 64 - 1,
               2 ** 64, 2 ** 70, -1, -512, -2 ** 24, -2 ** 31, -2 ** 63, -2 ** 63 - 1,
               -2 ** 64]
    out = [t[:width].ljust(width, b"\0") for t in text]
    for n in numbers:
        if -(256 ** (width - 1)) // 2 <= n < 256 ** (width - 1):
            out.append(b256(n, width))
    out += [b256(5, width, 0x81), b256(5, width, 0xC0), b256(5, width, 0xFE),
            b256(2 ** 63, width, 0x80), b"\x80" * width, b"\xff" * width]
    return out


def m_flip(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return "flip", data


def m_byte(rng, data):
    data = bytearray(data)
    if data:
        data[rng.randrange(len(data))] = rng.choice([0, 0x20, 0x30, 0x37, 0x38, 0x80,
                                                     0xFF, 0x0A, 0x3D, rng.randrange(256)])
    return "byte", data


def _headers(data):
    return walk(bytes(data)) or [(0, b"0", 0)]


def m_field(rng, data):
    data = bytearray(data)
    at, _kind, _size = rng.choice(_headers(data))
    name = rng.choice(["size", "size", "size", "mode", "uid", "gid", "mtime", "mtime",
                       "chksum", "type", "magic", "devmajor", "realsize", "name",
                       "linkname", "prefix"])
    start, width = FIELDS[name]
    if name == "type":
        value = rng.choice(b"0123456789\0xgLKSXAVMDN ").to_bytes(1, "big")
    elif name == "magic":
        value = rng.choice([b"ustar\x0000", b"ustar  \0", bytes(8), b"ustar\0  ",
                            b"ustaR\x0000", b"\xffstar\x0000"])
    elif name in ("name", "linkname", "prefix"):
        value = rng.choice([b"./", b"x/", b"tmp/", b"a.pyc", b"./d1/f", b"/", b".//",
                            b"\xff\xfe", b"a" * width, b"", b"tmp/../cache/"])
        value = value[:width].ljust(width, b"\0")
    else:
        value = rng.choice(hostile_numbers(width))
    data[at + start:at + start + width] = value[:width]
    if name != "chksum" and rng.random() < 0.9 and at + 512 <= len(data):
        fix_checksum(data, at)
    return "field-" + name, data


def m_truncate(rng, data):
    if rng.random() < 0.5:
        cut = rng.randrange(len(data) + 1)
    else:
        cut = max(0, rng.randrange(len(data) // 512 + 1) * 512 + rng.choice([-1, 0, 0, 1]))
    return "truncate", data[:cut]


def m_zeros(rng, data):
    at = rng.choice(_headers(data))[0]
    return "zeros", data[:at] + bytes(512 * rng.choice([1, 1, 2])) + data[at:]


def m_garbage(rng, data):
    tail = rng.choice([bytes(rng.randrange(256) for _ in range(rng.randint(1, 700))),
                       header(b"after-end", b"0", 5) + b"junk",
                       b"\xff" * 512, b"x" * 10])
    if rng.random() < 0.5:
        return "garbage-after-end", data + tail
    at = rng.choice(_headers(data))[0]
    return "garbage-mid", data[:at] + tail + data[at:]


PAX_VALUES = {
    b"size": [b"-1", b"1e3", b" 5", b"5 ", b"0x10", b"+5", b"1_0", b"", b"5\0",
              b"99999999999999999999", b"%d" % 2 ** 63, b"%d" % 2 ** 64, b"%d" % INT64_MAX,
              b"\xd9\xa3", b"0", b"3", b"1024", b"%d" % (CAP + 1)],
    b"uid": [b"-1", b"1.5", b"", b"abc", b"1_0", b"+1", b" 1", b"%d" % 2 ** 64, b"0x1",
             b"\xd9\xa3", b"7"],
    b"gid": [b"-1", b"1e2", b"", b"1_000", b"%d" % 2 ** 63, b"3\0"],
    b"mtime": [b"inf", b"nan", b"1e400", b"-inf", b"1.5", b"-1.5", b"1e3", b".5", b"5.",
               b"-", b"1_0", b" 5", b"0x10", b"12345678901234567890.5", b"-0", b"+5",
               b"1.2.3", b"", b"5\0", b"\xd9\xa3", b"%d" % 2 ** 64, b"-%d" % 2 ** 63],
    b"path": [b"a\0b", b"", b"/", b"x/", b"tmp/", b"a.pyc", b"./d9/f9", b"\xff\xfe",
              b"x" * 300],
    b"linkpath": [b"l\0k", b"", b"etc/passwd"],
    b"SCHILY.xattr.user.a": [b"v\0w", b"", b"\xff"],
    b"hdrcharset": [b"BINARY", b"ISO-IR 10646 2000 UTF-8", b"bogus"],
    b"atime": [b"nan", b"1.5"],
    b"comment": [b"x" * 600, b"\n", b"="],
}


def hostile_pax(rng):
    records = []
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(list(PAX_VALUES))
        records.append((key, rng.choice(PAX_VALUES[key])))
    data = bytearray(pax_records(records))
    trick = rng.random()
    if trick < 0.08:
        data[0:1] = b"9"                            # bad length
    elif trick < 0.14:
        data[-1:] = b"X"                            # missing newline
    elif trick < 0.18:
        data = b"0" + data                          # leading zero in the length
    elif trick < 0.22:
        data += b"garbage"
    elif trick < 0.25:
        data = b"5 a\n" + data                      # record without '='
    elif trick < 0.28:
        data = b"x" + data
    elif trick < 0.31:
        data += b"\0\0junk"
    elif trick < 0.34:
        data = b"99999999999999999999999 a=b\n"
    return bytes(data)


def m_pax(rng, data):
    at = rng.choice(_headers(data))[0]
    blob = ext(rng.choice([b"x", b"x", b"x", b"g"]), hostile_pax(rng),
               padding=rng.choice([None, None, b"P" * 512]))
    if rng.random() < 0.3:
        blob += ext(b"x", hostile_pax(rng))
    return "pax", data[:at] + blob + data[at:]


def m_gnulong(rng, data):
    at = rng.choice(_headers(data))[0]
    blob = b""
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice([b"L", b"K", b"x"])
        if kind == b"x":
            blob += pax([(b"path", b"pax/" + b"q" * rng.randint(0, 200))])
            continue
        value = rng.choice([b"n" * rng.randint(0, 700), b"a\0b", b"", b"tmp/",
                            b"x" * 100 + b"\0" * 20])
        blob += ext(kind, value, padding=rng.choice([None, b"\x01" * 512]))
    if rng.random() < 0.2:
        block = bytearray(blob[:512])
        block[124:136] = rng.choice(hostile_numbers(12))
        fix_checksum(block, 0)
        blob = bytes(block) + blob[512:]
    return "gnulong", data[:at] + blob + data[at:]


def m_sparse(rng, data):
    at = rng.choice(_headers(data))[0]
    n = rng.choice([1, 4, 5, 25, 26, 100])
    chunks = [(i * 4096, b"s" * rng.randint(0, 3)) for i in range(n)]
    blob = bytearray(sparse_member(rng.choice([b"sp", b"tmp/sp", b"d/"]), chunks,
                                   rng.choice([0, n * 4096, 2 ** 40])))
    trick = rng.random()
    if trick < 0.3 and len(blob) > 1024:            # hostile number in an extension block
        off = 512 + rng.randrange(21) * 24
        blob[off:off + 12] = rng.choice(hostile_numbers(12))
    elif trick < 0.5:                               # isextended set, no blocks follow
        blob[482] = 1
        fix_checksum(blob, 0)
    elif trick < 0.6:
        blob[386:398] = rng.choice(hostile_numbers(12))
        fix_checksum(blob, 0)
    return "sparse", data[:at] + bytes(blob) + data[at:]


def m_splice(rng, data, pool):
    other = rng.choice(pool)
    a = rng.choice(_headers(data))[0]
    b = rng.choice(_headers(other))[0]
    return "splice", data[:a] + other[b:]


def m_big(rng, data):
    """Extended data at and just over the caps (rare: these inputs are 1 MiB)."""
    at = rng.choice(_headers(data))[0]
    choice = rng.randrange(4)
    if choice == 0:
        blob = ext(b"L", b"b" * (CAP + rng.choice([-1, 0, 1])))
        tag = "big-longname"
    elif choice == 1:
        blob = ext(b"x", pax_records([(b"comment", b"c" * (CAP // 2))])) * 3
        tag = "big-chained-pax"
    elif choice == 2:
        n = CAP // 512 + rng.choice([-4, 2])
        blob = sparse_member(b"sp", [(0, b"a")] * 4, 10, ext_blocks=[(0, 0)] * (21 * n))
        tag = "big-sparse"
    else:
        blob = ext(b"K", b"k" * (CAP // 2)) + ext(b"L", b"l" * (CAP // 2 + 600))
        tag = "big-chained-gnu"
    return tag, data[:at] + blob + data[at:]


MUTATORS = [m_flip, m_byte, m_field, m_field, m_field, m_truncate, m_zeros, m_garbage,
            m_pax, m_pax, m_gnulong, m_sparse]


def generate(seed, index, pool):
    """The index-th input of a campaign: deterministic from (seed, index)."""
    rng = random.Random("%d/%d" % (seed, index))
    name, data = rng.choice(pool)
    data = bytes(data)
    tags = []
    if rng.random() < 0.005:
        tag, data = m_big(rng, data)
        tags.append(tag)
    for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
        if rng.random() < 0.08:
            tag, data = m_splice(rng, data, [d for _n, d in pool])
        else:
            tag, data = rng.choice(MUTATORS)(rng, data)
        tags.append(tag)
        data = bytes(data)
    return name + "+" + "+".join(tags), data


# -----------------------------------------------------------------------------------
# Running one twin

class Hang(Exception):
    pass


def _alarm(_signum, _frame):
    raise Hang()


def chunkings(data):
    n = len(data)
    rng = random.Random(hashlib.sha256(data).digest())
    out = [("whole", [n])]
    if n <= ONE_BYTE_MAX:
        out.append(("1", [1] * n))
    for size in (511, 512, 513):
        if n > size:
            out.append((str(size), [size] * (n // size + 1)))
    cuts = sorted(rng.randrange(n + 1) for _ in range(rng.randint(1, 8)))
    out.append(("random", [b - a for a, b in zip([0] + cuts, cuts + [n])] + [n]))
    return out


def run_twin(twin, data, sizes, mode):
    """('ok', out, members, count, dropped) | ('error', class, message)."""
    kwargs = dict(MODES[mode])
    if HANG_SECONDS:        # 0 under libFuzzer, which owns SIGALRM (-timeout)
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        if kwargs.get("exclude") is not None:
            kwargs["exclude"] = twin.globset.GlobSet(kwargs["exclude"])
        rewriter = twin.rewrite.TarRewriter(**kwargs)
        out = bytearray()
        pos = 0
        view = memoryview(data)
        for size in sizes:
            if pos >= len(data):
                break
            out += rewriter.feed(view[pos:pos + size])
            pos += size
        out += rewriter.close()
        return ("ok", bytes(out), tuple(rewriter.members), rewriter.count, rewriter.dropped)
    except Hang:
        return ("hang", "Hang", "no result after %ds" % HANG_SECONDS)
    except Exception as exc:                      # noqa: BLE001 - classified below
        return ("error", type(exc).__name__, str(exc))
    finally:
        if HANG_SECONDS:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def summary(result):
    if result[0] != "ok":
        return "%s %s: %s" % result
    return "ok out=%d bytes members=%d count=%d dropped=%d" % (
        len(result[1]), len(result[2]), result[3], result[4])


def first_difference(a, b):
    if a[0] != b[0] or a[0] != "ok":
        return "%s | %s" % (summary(a), summary(b))
    if a[1] != b[1]:
        at = next((i for i, (x, y) in enumerate(zip(a[1], b[1])) if x != y),
                  min(len(a[1]), len(b[1])))
        return "output differs at byte %d (lengths %d, %d): %r | %r" % (
            at, len(a[1]), len(b[1]), a[1][at:at + 16], b[1][at:at + 16])
    if a[2] != b[2]:
        for i, (x, y) in enumerate(zip(a[2], b[2])):
            if x != y:
                return "member %d: %r | %r" % (i, x, y)
        return "%d | %d members" % (len(a[2]), len(b[2]))
    return "count/dropped %s | %s" % (a[3:], b[3:])


# -----------------------------------------------------------------------------------
# The oracle: CPython tarfile, and the stricter rules we adopt on purpose

def tarfile_members(data):
    """('ok', [TarInfo]) or ('error', message), reading as `tarfile.open(mode="r:")`."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            return ("ok", tar.getmembers(), tar.offset)
    except Exception as exc:                      # noqa: BLE001 - tarfile is lenient, not total
        return ("error", "%s: %s" % (type(exc).__name__, exc), None)


def _strict_octal(field):
    text = field.split(b"\0", 1)[0].strip(b" ")
    return all(0x30 <= c <= 0x37 for c in text)


DECIMAL = re.compile(rb"[0-9]+\Z")
PAX_MTIME = re.compile(rb"-?[0-9]+(\.[0-9]*)?\Z")
PAX_RECORD = re.compile(rb"([1-9][0-9]*) ")


def _number_rule(field, what):
    if field[0] & 0x80:
        if field[0] not in (0x80, 0xFF):
            return "base256-lead-byte: %s field starts with 0x%02x" % (what, field[0])
        value = lenient_number(field)
        if not -INT64_MAX <= value <= INT64_MAX:
            return "base256-over-int64: %s = %d" % (what, value)
        return None
    if not _strict_octal(field):
        return "octal-syntax: %s field %r" % (what, bytes(field))
    return None


def _pax_rules(data):
    hits = []
    pos = 0
    while pos < len(data) and data[pos] != 0:
        match = PAX_RECORD.match(data, pos)
        if not match:
            return hits + ["pax-record-syntax: at %d: %r" % (pos, data[pos:pos + 20])]
        length = int(match.group(1))
        record = data[match.end():pos + length - 1]
        if pos + length > len(data) or data[pos + length - 1] != 0x0A or b"=" not in record:
            return hits + ["pax-record-syntax: at %d: %r" % (pos, data[pos:pos + 20])]
        key, value = record.split(b"=", 1)
        if key in (b"size", b"uid", b"gid") and not DECIMAL.match(value):
            hits.append("pax-%s-not-decimal: %r" % (key.decode(), value))
        if key == b"mtime" and not PAX_MTIME.match(value):
            hits.append("pax-mtime-not-decimal: %r" % value)
        if key in (b"size", b"uid", b"gid", b"mtime") and DECIMAL.match(value.lstrip(b"-")
                                                                        .split(b".")[0] or b"x"):
            if int(value.lstrip(b"-").split(b".")[0]) > INT64_MAX:
                hits.append("pax-%s-over-int64: %r" % (key.decode(), value))
        pos += length
    return hits


def _tarfile_reads(block):
    """Whether tarfile can read this header block (its frombuf, not our view of it)."""
    try:
        tarfile.TarInfo.frombuf(bytes(block), "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return False
    return True


def explaining_rules(rules, message):
    """The rules that can explain our error: hit at or before the offset it names (a
    refusal at offset 9000 is not explained by a rule broken at 20000)."""
    said = re.search(r"at offset (-?\d+)", message)
    if not said:
        return rules
    where = int(said.group(1))
    return [r for r in rules if int(re.findall(r"at (-?\d+)", r)[-1]) <= max(where, 0)
            or (r.startswith("truncated") and "truncated" in message)]


def strict_rules(data):
    """The stricter rules (STRICT_RULES) this input hits where tarfile is lenient, in
    stream order.  An input we refuse and tarfile reads must hit at least one."""
    hits = []
    pos = 0
    chained = 0
    pax_size = None
    first = True
    member_count = 0
    while True:
        if pos >= len(data):
            if pos > len(data):
                hits.append("truncated: member data or padding cut at %d" % len(data))
            return hits
        if pos + 512 > len(data):
            hits.append("truncated: archive ends inside a header at %d" % pos)
            return hits
        block = data[pos:pos + 512]
        if block.count(0) == 512:
            return hits
        if tarfile_checksum_ok(block):
            for what in ("mode", "uid", "gid", "size", "mtime", "chksum", "devmajor"):
                start, width = FIELDS[what]
                rule = _number_rule(block[start:start + width], what)
                if rule:
                    hits.append(rule + " (header at %d)" % pos)
            rule = _number_rule(block[337:345], "devminor")
            if rule:
                hits.append(rule + " (header at %d)" % pos)
        if not _tarfile_reads(block):
            if not first:
                hits.append("bad-header-after-first: at %d" % pos)
            return hits
        size = lenient_number(block[124:136])
        if size < 0:
            hits.append("negative-size: %d (header at %d)" % (size, pos))
            return hits
        if size > MAX_SIZE:
            hits.append("size-over-cap: %d (header at %d)" % (size, pos))
            return hits
        kind = block[156:157]
        pos += 512
        first = False
        if kind in (b"x", b"X", b"g", b"L", b"K"):     # X: Solaris, a per-member PAX
            if size > CAP:
                hits.append("ext-header-over-cap: %d bytes at %d" % (size, pos - 512))
                return hits
            if kind != b"g":
                chained += size
                if chained > CAP:
                    hits.append("chained-ext-over-cap: %d bytes at %d" % (chained, pos - 512))
                    return hits
            if pos + size + (-size % 512) > len(data):
                hits.append("truncated: extended data at %d" % pos)
                return hits
            if kind in (b"x", b"X", b"g"):
                hits += ["%s (header at %d)" % (h, pos - 512)
                         for h in _pax_rules(data[pos:pos + size])]
            if kind == b"g" and re.search(rb"(?:^|\n)\d+ size=", data[pos:pos + size]):
                hits.append("global-pax-size: (header at %d)" % (pos - 512))
            if kind != b"g" and pos + size + (-size % 512) >= len(data):
                hits.append("truncated: extended header at %d without a member" % (pos - 512))
                return hits
            if kind in (b"x", b"X"):
                values = re.findall(rb"(?:^|\n)\d+ size=(\d+)\n", data[pos:pos + size])
                if values and pax_size is None:     # the first header before a member wins
                    pax_size = int(values[-1])      # (tarfile); in one header, the last record
            pos += size + (-size % 512)
            continue
        chained = 0
        first_member = member_count == 0
        member_count += 1
        if pax_size is not None:
            size, pax_size = pax_size, None
            if size > MAX_SIZE:
                hits.append("size-over-cap: PAX size %d (header at %d)" % (size, pos - 512))
                return hits
        if kind == b"S":
            for at in list(range(386, 482, 12)) + [483]:
                rule = _number_rule(block[at:at + 12], "sparse map")
                if rule:
                    hits.append(rule + " (header at %d)" % (pos - 512))
        if kind == b"S" and block[482]:
            blocks = 0
            while True:
                if pos + 512 > len(data):
                    hits.append("truncated: sparse map at %d" % pos)
                    return hits
                blocks += 1
                if blocks * 512 > CAP:
                    hits.append("sparse-map-over-cap: at %d" % pos)
                    return hits
                more = data[pos + 504]
                if not first_member and any(lenient_number(data[at:at + 12]) is None
                                            for at in range(pos, pos + 504, 12)):
                    hits.append("bad-header-after-first: sparse map at %d" % pos)
                    return hits
                for at in range(pos, pos + 504, 12):
                    rule = _number_rule(data[at:at + 12], "sparse map")
                    if rule:
                        hits.append(rule + " (sparse map at %d)" % pos)
                if any(lenient_number(data[at:at + 12]) is None
                       for at in range(pos, pos + 504, 12)) and not first_member:
                    hits.append("bad-header-after-first: sparse map at %d" % pos)
                    return hits
                pos += 512
                if not more:
                    break
        name = block[0:100].split(b"\0", 1)[0]
        if kind in (b"1", b"2", b"3", b"4", b"5", b"6") or (kind == b"\0"
                                                              and name.endswith(b"/")):
            continue
        pos += size + (-size % 512)


STRICT_RULES = """
octal-syntax            numeric header fields are octal digits, optional leading/trailing
                        spaces, NUL-terminated; empty means 0 (tarfile takes int() syntax)
base256-lead-byte       base-256 only with a first byte of 0x80 (+) or 0xff (-)
base256-over-int64      a base-256 value must fit in signed 64 bits (|v| <= 2^63-1)
negative-size           a size must be >= 0
size-over-cap           a member size (header or PAX) over 2^60 (1 EiB)
global-pax-size         a global PAX header with a size record (it would reframe members)
pax-size/uid/gid-not-decimal   PAX size, uid, gid are plain decimal digits
pax-mtime-not-decimal   PAX mtime is a decimal number, optional '-' and fraction
pax-*-over-int64        PAX numbers fit in signed 64 bits
pax-record-syntax       "<len> key=value\\n" with a consistent length (added: tarfile skips
                        what its regex does not match; not in the issue's list)
ext-header-over-cap     one PAX or GNU L/K header over 1 MiB
chained-ext-over-cap    extended data for one member over 1 MiB in total
sparse-map-over-cap     a sparse map over 1 MiB of extension blocks
bad-header-after-first  a bad header after the first member (tarfile silently stops)
truncated               an archive that ends early
"""


def _tarinfo_view(info):
    return (info.name, info.type, info.size, info.mode, info.uid, info.gid,
            info.mtime if not isinstance(info.mtime, float) or not math.isfinite(info.mtime)
            else math.floor(info.mtime), info.linkname)


def _member_view(m):
    decode = lambda b: b.decode("utf-8", "surrogateescape")    # noqa: E731
    return (decode(m.name), m.type, m.size, m.mode, m.uid, m.gid, m.mtime, decode(m.linkname))


def _exact_floor(text):
    whole, _, fraction = text.partition(".")
    value = int(whole)
    if text.startswith("-") and fraction.strip("0"):
        value -= 1
    return value


def oracle_quirk(ours, theirs, info, data):
    """Differences that are tarfile's, not ours (listed in docs/robustness.md):

    - a sparse member: tarfile reports its expanded size (and GNU.sparse.name for PAX
      sparse); we report the bytes it occupies in the stream and the header's name.
    - a non-ustar header (GNU or v7 magic) with bytes at 345..500: tarfile joins them
      to the name as a ustar prefix; they are GNU atime/ctime/sparse fields there.
    - a PAX mtime with a long fraction: tarfile's float may round it up a second; the
      exact floor of the decimal is right too.
    - a GNU L/K name without a NUL in its declared size: tarfile reads on into the
      block's padding; the name is the declared bytes.
    """
    ours, theirs = list(ours), list(theirs)
    if info.type == tarfile.GNUTYPE_SPARSE and any(
            kind == b"g" and at < info.offset for at, kind, _size in walk(data)):
        return True     # tarfile applies global PAX records to every member type but S
    text = info.pax_headers.get("mtime", "")
    if PAX_MTIME.match(text.encode("utf-8", "surrogateescape")) and ours[6] == _exact_floor(text):
        ours[6] = theirs[6]     # tarfile's float rounds 1.999999999 up; the exact floor is 1
    if info.sparse is not None or any(k.startswith("GNU.sparse.") for k in info.pax_headers):
        ours[2] = theirs[2]
        if "GNU.sparse.name" in info.pax_headers:
            ours[0] = theirs[0]
    group = [(at, k, size) for at, k, size in walk(data)
             if info.offset <= at < info.offset_data - 512]
    for index, kind in ((0, b"L"), (7, b"K")):
        if any(k == kind for _a, k, _s in group) and theirs[index].startswith(ours[index]):
            ours[index] = theirs[index]  # tarfile reads a name with no NUL on into the padding
    main = data[info.offset_data - 512:info.offset_data] if info.sparse is None else b""
    if len(main) == 512 and main[257:263] != b"ustar\0" and main[345] and info.type not in (
            b"L", b"K"):
        prefix = main[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if theirs[0].startswith(prefix + "/"):
            theirs[0] = theirs[0][len(prefix) + 1:]
            ours[0] = ours[0].rstrip("/") if theirs[0] == ours[0].rstrip("/") else ours[0]
    return ours == theirs


MEMBER_KEYS = re.compile(rb"\d+ (path|linkpath|size|uid|gid|mtime|uname|gname)=")


def _oracle_kind(data, info):
    """Name two rules apart from plain member differences, so a regression in either is
    easy to see: global PAX records (g) apply to every later member, and of several
    extended headers for one member the FIRST wins (tarfile recurses); our twins follow
    tarfile in both."""
    headers = walk(data)
    for at, kind, size in headers:
        if at >= info.offset_data:
            break
        if kind == b"g" and MEMBER_KEYS.search(data[at + 512:at + 512 + size]):
            return "oracle-global-pax"
    group = [k for at, k, _ in headers if info.offset <= at < info.offset_data - 512]
    if len([k for k in group if k in b"xX"]) > 1 or group.count(b"L") > 1 or \
            group.count(b"K") > 1 or (b"x" in group and (b"L" in group or b"K" in group)):
        return "oracle-chained-ext-order"
    return "oracle-members"


def _global_at_end(data):
    headers = walk(data)
    return bool(headers) and headers[-1][1] == b"g"


def compare_oracle(result, data):
    """Failures of one twin's parse-mode result against tarfile."""
    oracle = tarfile_members(data)
    if oracle[0] == "error" and not oracle[1].startswith(("ReadError", "HeaderError")):
        return []           # tarfile itself crashed (e.g. OverflowError on a sparse map)
    if result[0] == "ok" and oracle[0] == "error":
        if not data:        # both must refuse an empty layer (tarfile: "empty file")
            return [("oracle-empty-input", "we accept 0 bytes, tarfile says %s" % oracle[1])]
        if ("empty header" in oracle[1] or "end of file header" in oracle[1]) and \
                _global_at_end(data):
            return []       # quirk: tarfile wants a member after a global header
        return [("oracle-tarfile-refused", "we accept, tarfile says %s" % oracle[1])]
    if result[0] == "error" and result[1] == "TarError" and oracle[0] == "ok":
        rules = explaining_rules(strict_rules(data), result[2])
        if not rules:
            return [("oracle-refused-no-rule", "we say %r; tarfile reads %d members%s" % (
                result[2], len(oracle[1]),
                "; rules hit later only: %s" % strict_rules(data) if strict_rules(data) else ""))]
        return []
    if result[0] != "ok" or oracle[0] != "ok":
        return []
    ours = [_member_view(m) for m in result[2]]
    theirs = [_tarinfo_view(i) for i in oracle[1]]
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a != b and not oracle_quirk(a, b, oracle[1][i], data):
            fields = "name type size mode uid gid mtime linkname".split()
            diff = ", ".join("%s %r != tarfile %r" % (f, x, y)
                             for f, x, y in zip(fields, a, b) if x != y)
            return [(_oracle_kind(data, oracle[1][i]), "member %d: %s" % (i, diff))]
    if len(ours) != len(theirs):
        rules = strict_rules(data)
        return [("oracle-members", "we read %d members, tarfile %d (%s)%s" % (
            len(ours), len(theirs), (ours + theirs)[min(len(ours), len(theirs))][0],
            "; tarfile stops where we should refuse: " + rules[0] if rules else ""))]
    return []


# -----------------------------------------------------------------------------------
# One input through everything




def load_twins(spec=None):
    """Twins by name ("cython,python"; default: every available one), or from a
    "module:function" factory (the self-tests plant broken twins that way)."""
    from occystrap import _native
    if spec and ":" in spec:
        import importlib
        module, function = spec.split(":")
        return getattr(importlib.import_module(module), function)()
    names = spec.split(",") if spec else (
        ["cython", "python"] if _native.IMPLEMENTATION == "cython" else ["python"])
    return [Twin(n) for n in names]


def check(data, twins):
    """[(failure class, detail)] for one input; empty when every rule holds."""
    data = bytes(data)
    failures = []
    cuts = chunkings(data)
    by_mode = {}
    hung = set()
    for mode in MODES:
        per_twin = []
        for twin in twins:
            if twin.name in hung:       # one hang per twin is enough (each costs seconds)
                per_twin.append(("hang", "Hang", "skipped"))
                continue
            results = []
            for name, sizes in cuts:
                results.append((name, run_twin(twin, data, sizes, mode)))
                if results[-1][1][0] == "hang":
                    break
            base = results[0][1]
            if results[-1][1][0] == "hang":
                hung.add(twin.name)
                failures.append(("hang", "%s %s chunking %s" % (twin.name, mode,
                                                                results[-1][0])))
            elif base[0] == "error" and base[1] != "TarError":
                failures.append(("exception", "%s %s: %s: %s" % ((twin.name, mode) + base[1:])))
            for name, other in results[1:]:
                if other != base:
                    failures.append(("chunking", "%s %s whole vs %s: %s" % (
                        twin.name, mode, name, first_difference(base, other))))
                    break
            per_twin.append(base)
        for twin, other in zip(twins[1:], per_twin[1:]):
            if other != per_twin[0]:
                failures.append(("twins", "%s: %s vs %s: %s" % (
                    mode, twins[0].name, twin.name, first_difference(per_twin[0], other))))
        by_mode[mode] = per_twin
    for twin, result in zip(twins, by_mode["parse"]):
        for kind, detail in compare_oracle(result, data):
            failures.append((kind, "%s: %s" % (twin.name, detail)))
        if result[0] != "ok":
            continue
        for mode in ("copy", "normalize", "normalize+exclude", "clamp"):
            out = by_mode[mode][twins.index(twin)]
            if out[0] != "ok":
                failures.append(("twins-modes", "%s: parse ok, %s: %s" % (
                    twin.name, mode, summary(out))))
                continue
            again = run_twin(twin, out[1], [len(out[1])], "parse")
            if again[0] != "ok" or again[3] != out[3] - out[4]:
                failures.append(("reparse", "%s %s: output parses as %s, expected %d" % (
                    twin.name, mode, summary(again), out[3] - out[4])))
    return dedupe(failures)


def dedupe(failures):
    seen, out = set(), []
    for kind, detail in failures:
        if (kind, detail) not in seen:
            seen.add((kind, detail))
            out.append((kind, detail))
    return out


def failure_class(failures):
    """A short name for the first failure: its class, which twin/mode, and what differed
    (e.g. twins-parse-error-vs-ok, oracle-members-python-mtime, crash-SIGSEGV)."""
    kind, detail = failures[0]
    words = detail.split(":")[0].split()
    if kind in ("crash", "hang"):
        what = detail.split(":")[-1].split()[0] if kind == "crash" else ""
        parts = [kind, what]
    elif kind == "chunking":
        parts = [kind, words[0], words[1], _what(detail)]
    elif kind == "twins":
        parts = [kind, words[0], _what(detail)]
    elif kind == "exception":
        parts = [kind, words[0], detail.split(":")[1].strip()]
    elif kind.startswith("oracle-") and "member " in detail:
        field = re.search(r"member \d+: (\w+) ", detail)
        count = "count" if "members, tarfile" in detail else ""
        parts = [kind, words[0], count or (field.group(1) if field else "")]
    else:
        parts = [kind, words[0]]
    return re.sub(r"[^A-Za-z0-9+-]+", "-", "-".join(p for p in parts if p))[:60]


def _what(detail):
    if "output differs" in detail:
        return "output"
    if detail.count("error ") == 2:
        return "error-message"
    if "error " in detail:
        return "error-vs-ok"
    if "member " in detail:
        return "members"
    return "counts"


# -----------------------------------------------------------------------------------
# Isolation: a worker process per batch

def _serve(conn, spec):
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (3 * 1024 * MiB, 3 * 1024 * MiB))
    except (ImportError, ValueError, OSError):
        pass
    twins = load_twins(spec)
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        conn.send(check(data, twins))


class Worker:
    """Runs `check` in a child process: a segfault or a hang is a failure, not a death."""

    def __init__(self, twins=None, timeout=15):
        self.spec = twins           # see load_twins
        self.timeout = timeout
        self.proc = None

    def _start(self):
        ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self.spec), daemon=True)
        self.proc.start()
        child.close()

    def check(self, data):
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send_bytes(bytes(data))
        if self.conn.poll(self.timeout):
            try:
                return self.conn.recv()
            except EOFError:
                pass
        else:
            self.proc.kill()
            self.proc.join()
            self.proc = None
            return [("hang", "worker killed after %ds (a loop that holds the GIL)" %
                     self.timeout)]
        self.proc.join()
        code = self.proc.exitcode
        self.proc = None
        name = signal.Signals(-code).name if code and code < 0 else str(code)
        return [("crash", "worker died: %s" % name)]

    def close(self):
        if self.proc is not None:
            self.conn.close()
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()
            self.proc = None


def save(directory, data, failures, tag=""):
    os.makedirs(directory, exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()[:10]
    path = os.path.join(directory, "%s--%s--%s.tar" % (failure_class(failures),
                                                       re.sub(r"[^a-z0-9+-]", "", tag)[:40],
                                                       digest))
    with open(path, "wb") as f:
        f.write(data)
    return path


def minimise(worker, data, failures, budget=200, seconds=10):
    """Drop whole blocks while the first failure class persists (not for hangs: each
    try would cost the hang's timeout)."""
    want = failures[0][0]
    if want == "hang":
        return data
    deadline = time.monotonic() + seconds

    def same(candidate):
        return any(k == want for k, _ in worker.check(candidate))

    step = 512
    while budget > 0 and len(data) > 512 and time.monotonic() < deadline:
        changed = False
        at = 0
        while at + step <= len(data) and budget > 0 and time.monotonic() < deadline:
            candidate = data[:at] + data[at + step:]
            budget -= 1
            if same(candidate):
                data, changed = candidate, True
            else:
                at += step
        if not changed:
            break
    return data


def campaign(inputs, seed=0, seconds=None, save_to=None, log=print, do_minimise=True,
             twins=None):
    """Run `inputs` generated inputs; returns (inputs run, seconds, {class: [paths]})."""
    pool = seeds()
    worker = Worker(twins)
    found = {}
    start = time.monotonic()
    run = 0
    try:
        for name, data in pool:             # seeds must pass as they are
            failures = worker.check(data)
            if failures:
                found.setdefault(failure_class(failures), []).append(
                    save(save_to, data, failures, "seed-" + name) if save_to else name)
                log("seed %s: %s" % (name, failures[0]))
        for index in range(inputs):
            if seconds is not None and time.monotonic() - start > seconds:
                break
            tag, data = generate(seed, index, pool)
            failures = worker.check(data)
            run += 1
            if not failures:
                continue
            cls = failure_class(failures)
            if cls in found and len(found[cls]) >= 3:
                found[cls].append(None)
                continue
            if do_minimise and len(data) < 64 * KiB:
                data = minimise(worker, data, failures)
                failures = worker.check(data) or failures
                cls = failure_class(failures)
            path = save(save_to, data, failures, tag) if save_to else tag
            found.setdefault(cls, []).append(path)
            log("input %d (%s): %s: %s -> %s" % (index, tag, failures[0][0],
                                                 failures[0][1][:200], path))
    finally:
        worker.close()
    return run, time.monotonic() - start, found


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int,
                        default=int(os.environ.get("OCCYSTRAP_FUZZ_INPUTS", "2000")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("OCCYSTRAP_FUZZ_SEED", "0")))
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("OCCYSTRAP_FUZZ_SECONDS", "110")))
    parser.add_argument("--save", default=os.environ.get("OCCYSTRAP_FUZZ_SAVE", "fuzz-failures"))
    parser.add_argument("--no-minimise", action="store_true")
    args = parser.parse_args(argv)
    from occystrap import _native
    print("core %s from %s; seed %d, up to %d inputs or %.0fs" % (
        _native.IMPLEMENTATION, os.path.dirname(_native.__file__), args.seed, args.inputs,
        args.seconds), flush=True)
    run, took, found = campaign(args.inputs, args.seed, args.seconds, args.save,
                                do_minimise=not args.no_minimise)
    print("%d inputs in %.1fs (%.1f/s), seed %d: %d failure classes" % (
        run, took, run / took if took else 0, args.seed, len(found)))
    for cls, paths in sorted(found.items()):
        print("  %-60s x%d  %s" % (cls, len(paths), next((p for p in paths if p), "")))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
