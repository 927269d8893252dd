"""Tar header rules: parsing, validation and formatting, written once for both twins.

Implements the POSIX.1-1988 ustar header, the GNU extensions CPython tarfile reads
(magic "ustar  ", base-256 numbers, L/K long names, old sparse headers) and POSIX.1-2001
PAX records.  CPython tarfile is the oracle for what a member is; where tarfile accepts
what the format does not allow (Python int() syntax in octal fields, PAX numbers it
silently reads as 0), we refuse, as docs/robustness.md lists.

This file is the single source of these rules: it runs as the pure-Python twin
(`tarstream_py`) and, through the symlink `tarstream.py` and the augmenting
`tarstream.pxd`, Cython compiles the same code into the `tarstream` extension, where the
functions the pxd declares `cdef ... nogil` take a `const unsigned char*` and serve the
C fast path of rewrite.pyx.  Those functions therefore only index and do integer
arithmetic, never overflow 64 bits, and report failure with a sentinel (`BAD`, -1)
instead of raising.
"""
from collections import namedtuple

from ._common import (BLOCK, DIRTYPE, GNU_LONGLINK, GNU_LONGNAME, MAX_EXT_HEADER,
                      MAX_SPARSE_BLOCKS, Member, TarError, XGLTYPE, XHDTYPE)

__all__ = ["Header", "parse_header", "parse_number", "parse_pax", "format_pax",
           "format_number", "format_header", "checksum", "set_checksum", "padded",
           "resolve_member", "filter_pax"]

Header = namedtuple("Header", "name mode uid gid size mtime type linkname uname gname "
                              "devmajor devminor gnu")

MAX_NUMBER = 2 ** 63 - 1        # numbers are signed 64-bit; anything larger is refused
BAD = -MAX_NUMBER - 1           # "not a number tar allows" (never a valid value)
MAX_SIZE = 2 ** 60              # 1 EiB: a member size, padded and added to an offset,
                                # stays far from 64-bit overflow

# header_problem() results: 0 is a valid header; FIELD_BASE + offset names a bad field.
OK = 0
ZERO = 1
CHECKSUM = 2
BAD_SIZE = 3
FIELD_BASE = 16


# -- rules shared with the C fast path (tarstream.pxd declares them cdef nogil) ---------

def field_number(buf, pos, width):
    """The number in the header field buf[pos:pos+width], or BAD.

    Octal digits, optionally surrounded by spaces and ended by a NUL (an empty field is
    0), or GNU base-256: a first byte of 0x80 (positive) or 0xff (negative, two's
    complement), as tarfile reads it, limited to signed 64 bits.
    """
    first = buf[pos]
    value = 0
    if first == 0x80 or first == 0xFF:
        for i in range(pos + 1, pos + width):
            if value > (MAX_NUMBER >> 8):
                return BAD
            value = (value << 8) | ((buf[i] ^ 0xFF) if first == 0xFF else buf[i])
        if first == 0xFF:           # value is the complement: the number is -value - 1
            return BAD if value >= MAX_NUMBER else -value - 1
        return value
    stop = pos
    while stop < pos + width and buf[stop] != 0:
        stop += 1
    i = pos
    while i < stop and buf[i] == 32:
        i += 1
    while stop > i and buf[stop - 1] == 32:
        stop -= 1
    while i < stop:
        digit = buf[i] - 48
        if digit < 0 or digit > 7 or value > (MAX_NUMBER >> 3):
            return BAD
        value = value * 8 + digit
        i += 1
    return value


def unsigned_checksum(buf, pos):
    """Header checksum with the chksum field counted as spaces (POSIX)."""
    total = 256
    for i in range(pos, pos + 148):
        total += buf[i]
    for i in range(pos + 156, pos + 512):
        total += buf[i]
    return total


def signed_checksum(buf, pos):
    """The checksum some old tars computed over signed chars; tarfile accepts both."""
    total = 256
    for i in range(pos, pos + 148):
        total += buf[i] - 256 if buf[i] > 127 else buf[i]
    for i in range(pos + 156, pos + 512):
        total += buf[i] - 256 if buf[i] > 127 else buf[i]
    return total


def header_problem(buf, pos):
    """What is wrong with the 512-byte header at buf[pos]: OK, ZERO (end of archive),
    CHECKSUM, BAD_SIZE (size_ok) or FIELD_BASE + the offset of a malformed number field."""
    i = pos
    while i < pos + 512 and buf[i] == 0:
        i += 1
    if i == pos + 512:
        return ZERO
    stored = field_number(buf, pos + 148, 8)
    if stored == BAD or (stored != unsigned_checksum(buf, pos)
                         and stored != signed_checksum(buf, pos)):
        return CHECKSUM
    if field_number(buf, pos + 100, 8) == BAD:          # mode
        return FIELD_BASE + 100
    if field_number(buf, pos + 108, 8) == BAD:          # uid
        return FIELD_BASE + 108
    if field_number(buf, pos + 116, 8) == BAD:          # gid
        return FIELD_BASE + 116
    value = field_number(buf, pos + 124, 12)            # size
    if value == BAD:
        return FIELD_BASE + 124
    if not size_ok(value):
        return BAD_SIZE
    if field_number(buf, pos + 136, 12) == BAD:         # mtime
        return FIELD_BASE + 136
    if field_number(buf, pos + 329, 8) == BAD:          # devmajor
        return FIELD_BASE + 329
    if field_number(buf, pos + 337, 8) == BAD:          # devminor
        return FIELD_BASE + 337
    return OK


def size_ok(value):
    """Whether a member size (header or PAX) is one we take: 0 <= size <= MAX_SIZE."""
    return 0 <= value <= MAX_SIZE


def is_number(value):
    """Whether a field_number/pax_decimal/pax_time result is a number (not BAD)."""
    return value != BAD


def cstr_len(buf, pos, width):
    """Length of the NUL-terminated string in buf[pos:pos+width]."""
    n = 0
    while n < width and buf[pos + n] != 0:
        n += 1
    return n


def header_type(buf, pos):
    """The member type of the header at buf[pos]: its typeflag, except that an old-style
    regular file ('\\0') whose name field ends in '/' is a directory (tarfile, V7)."""
    kind = buf[pos + 156]
    if kind == 0:
        n = cstr_len(buf, pos, 100)
        if n and buf[pos + n - 1] == 47:
            return 53
    return kind


def has_data(kind):
    """Whether `size` bytes of data follow a member of this type: all but hard and
    symbolic links, devices, directories and FIFOs ('1'..'6'), as tarfile reads."""
    return not 49 <= kind <= 54


def is_extension(kind):
    """Extended headers: PAX (x, Solaris X, global g) and GNU long names (L, K), which
    describe the member after them (g: every later member) instead of being one."""
    return has_pax_records(kind) or kind == 76 or kind == 75


def has_pax_records(kind):
    """Headers whose data are PAX records: x and Solaris X (for the next member, as
    tarfile, GNU tar and libarchive read X) and g (global)."""
    return kind == 120 or kind == 88 or kind == 103


def strip_slashes(buf, start, end):
    """End of buf[start:end] without its trailing '/'s (tarfile's rstrip("/"))."""
    while end > start and buf[end - 1] == 47:
        end -= 1
    return end


def long_name_end(buf, start, end, is_dir):
    """End of a GNU long name: a directory's loses one trailing '/' (tarfile's
    removesuffix), anything else is kept whole."""
    if is_dir and end > start and buf[end - 1] == 47:
        return end - 1
    return end


def pax_record_end(buf, pos, end):
    """End of the PAX record "<len> <key>=<value>\\n" at buf[pos], or -1 if malformed:
    a decimal length covering the whole record, a space, a non-empty key, '=', and a
    newline as the record's last byte."""
    length = 0
    i = pos
    while i < end and 48 <= buf[i] <= 57:
        length = length * 10 + (buf[i] - 48)
        if length > end - pos:
            return -1
        i += 1
    if i == pos or i >= end or buf[i] != 32:
        return -1
    stop = pos + length
    if stop <= i + 2 or buf[stop - 1] != 10 or buf[i + 1] == 61:
        return -1
    return stop if pax_equals(buf, i + 1, stop) > 0 else -1


def pax_key_start(buf, pos):
    """Start of the key of the (well-formed) PAX record at buf[pos]."""
    while buf[pos] != 32:
        pos += 1
    return pos + 1


def pax_equals(buf, start, stop):
    """Position of the '=' ending the key that starts at buf[start], or -1."""
    while start < stop - 1 and buf[start] != 61:
        start += 1
    return start if start < stop - 1 else -1


def pax_key(buf, start, end):
    """Which PAX key buf[start:end] is: 1 path, 2 linkpath, 3 size, 4 uid, 5 gid,
    6 mtime, 7 atime/ctime/LIBARCHIVE.creationtime, 8 GNU.sparse.name, 0 any other."""
    n = end - start
    if n == 4 and _same(buf, start, b"path", 4):
        return 1
    if n == 8 and _same(buf, start, b"linkpath", 8):
        return 2
    if n == 4 and _same(buf, start, b"size", 4):
        return 3
    if n == 3 and _same(buf, start, b"uid", 3):
        return 4
    if n == 3 and _same(buf, start, b"gid", 3):
        return 5
    if n == 5 and _same(buf, start, b"mtime", 5):
        return 6
    if n == 5 and (_same(buf, start, b"atime", 5) or _same(buf, start, b"ctime", 5)):
        return 7
    if n == 23 and _same(buf, start, b"LIBARCHIVE.creationtime", 23):
        return 7
    if n == 15 and _same(buf, start, b"GNU.sparse.name", 15):
        return 8
    return 0


def _same(buf, start, word, n):
    for i in range(n):
        if buf[start + i] != word[i]:
            return False
    return True


def pax_decimal(buf, start, end):
    """A PAX size/uid/gid value: plain decimal digits within 64 bits, or BAD."""
    value = 0
    if start >= end:
        return BAD
    for i in range(start, end):
        digit = buf[i] - 48
        if digit < 0 or digit > 9 or value > (MAX_NUMBER - digit) // 10:
            return BAD
        value = value * 10 + digit
    return value


def pax_time(buf, start, end):
    """A PAX time value ("-12.5"): optional '-', digits, optional '.' and digits (maybe
    none); the whole seconds it floors to, or BAD."""
    negative = start < end and buf[start] == 45
    if negative:
        start += 1
    dot = start
    while dot < end and buf[dot] != 46:
        dot += 1
    seconds = pax_decimal(buf, start, dot)
    if seconds == BAD:
        return BAD
    fraction = pax_fraction(buf, dot, end)
    if fraction < 0:
        return BAD
    if negative:
        return -seconds - 1 if fraction else -seconds
    return seconds


def pax_fraction(buf, dot, end):
    """Whether the fraction buf[dot:end] of a PAX time ("" or '.' and digits, maybe
    none: "5." is 5, as in C and Python) is non-zero: 1 or 0, or -1 if malformed."""
    fraction = 0
    if dot < end:
        for i in range(dot + 1, end):
            if buf[i] < 48 or buf[i] > 57:
                return -1
            if buf[i] != 48:
                fraction = 1
    return fraction


def pax_time_after(buf, start, end, ts):
    """Whether the PAX time buf[start:end] is later than ts: its floor is, or equals ts
    with a non-zero fraction ("10.5" is after 10).  A malformed time is not."""
    seconds = pax_time(buf, start, end)
    if seconds == BAD:
        return False
    if seconds != ts:
        return seconds > ts
    dot = start
    while dot < end and buf[dot] != 46:
        dot += 1
    return pax_fraction(buf, dot, end) == 1


def prefix_len(buf, pos):
    """Length of the ustar prefix field of the header at buf[pos]: only POSIX ustar
    headers (magic "ustar\\0") have one, GNU headers keep other data there, and GNU
    types (L, K, S) never use it (tarfile)."""
    kind = buf[pos + 156]
    if kind == 76 or kind == 75 or kind == 83:
        return 0
    if not _same(buf, pos + 257, b"ustar", 5) or buf[pos + 262] != 0:
        return 0
    return cstr_len(buf, pos + 345, 155)


def check_sparse(block, offset, extension):
    """Refuse an old GNU sparse header (extension=False: its 4 map entries and real size)
    or extension block (21 entries) with a malformed number, as tarfile does."""
    block = bytes(block)
    start, count = (0, 21) if extension else (386, 4)
    for field in range(start, start + 24 * count, 12):
        if field_number(block, field, 12) == BAD:
            raise TarError("invalid number in sparse map at offset %d" % offset)
    if not extension and field_number(block, 483, 12) == BAD:
        raise TarError("invalid number in sparse map at offset %d" % offset)


def check_sparse_blocks(count, offset):
    """Refuse a sparse map that asks for more than MAX_SPARSE_BLOCKS extension blocks
    (memory stays bounded; about 43,000 regions is far beyond any real file)."""
    if count >= MAX_SPARSE_BLOCKS:
        raise TarError("sparse map over %d blocks at offset %d" % (MAX_SPARSE_BLOCKS, offset))


def is_time_key(buf, start, end):
    """The PAX records normalize-timestamps drops: mtime, atime, ctime and
    LIBARCHIVE.creationtime (upstream B.11)."""
    key = pax_key(buf, start, end)
    return key == 6 or key == 7


def drops_time_record(buf, key, equals, stop, ts, clamp):
    """Whether normalize-timestamps drops the PAX record whose key is buf[key:equals]
    (its value ends before the newline at stop - 1): a timestamp record (is_time_key)
    always with mode=set, only when its time is after ts (pax_time_after) with
    mode=clamp.  A member whose mtime record is dropped gets ts in its header
    (normalize_header's force): tarfile writes 0 there when the time needs PAX."""
    if not is_time_key(buf, key, equals):
        return False
    return not clamp or pax_time_after(buf, equals + 1, stop - 1, ts)


def normalize_header(buf, pos, mtime, ts, clamp, force):
    """normalize-timestamps on the header at buf[pos]: patch_mtime to the 12-byte field
    `mtime` (the value ts) with mode=set; with mode=clamp only when its mtime is after
    ts or `force` (its PAX mtime was dropped), any other header stays byte for byte
    (BuildKit, umoci, regctl --time after=)."""
    if not clamp or force or field_number(buf, pos + 136, 12) > ts:
        patch_mtime(buf, pos, mtime)


def put_octal(buf, pos, width, value):
    """Write 0 <= value < 8**(width-1) as width-1 zero-padded octal digits and a NUL."""
    buf[pos + width - 1] = 0
    for i in range(width - 2, -1, -1):
        buf[pos + i] = 48 + (value & 7)
        value >>= 3


def patch_block_mtime(block, mtime, ts=0, clamp=False, force=False):
    """normalize_header on a 512-byte bytearray header with a 12-byte mtime field."""
    if not isinstance(block, bytearray) or len(block) < BLOCK or len(mtime) != 12:
        raise ValueError("patch_block_mtime takes a 512-byte bytearray and 12 bytes")
    normalize_header(block, 0, bytes(mtime), ts, clamp, force)


def patch_mtime(buf, pos, mtime):
    """Set the header at buf[pos] to the 12-byte mtime field `mtime`, clear GNU's
    atime/ctime fields and re-checksum: normalize-timestamps on one header."""
    for i in range(12):
        buf[pos + 136 + i] = mtime[i]
    if _same(buf, pos + 257, b"ustar  \0", 8):
        for i in range(pos + 345, pos + 369):
            buf[i] = 0
    set_header_checksum(buf, pos)


def set_header_checksum(buf, pos):
    """Write the checksum of the header at buf[pos] in place (6 octal digits, NUL, space)."""
    for i in range(pos + 148, pos + 156):
        buf[i] = 32
    total = unsigned_checksum(buf, pos)
    for i in range(5, -1, -1):
        buf[pos + 148 + i] = 48 + (total & 7)
        total >>= 3
    buf[pos + 154] = 0
    buf[pos + 155] = 32


# -- the Python API ----------------------------------------------------------------------

def padded(size):
    """Bytes a member of `size` occupies, rounded up to whole 512-byte blocks."""
    return (size + 511) // 512 * 512


def _cstr(field):
    end = field.find(b"\0")
    return bytes(field if end < 0 else field[:end])


def _number_error(field):
    if field and field[0] & 0x80:
        return TarError("base-256 number out of range in tar header: %s" % field.hex())
    return TarError("invalid number in tar header: %r" % _cstr(field).strip(b" "))


def parse_number(field):
    """Decode a numeric header field: octal text, or GNU base-256 (0x80 / 0xff).

    :param field: the raw field bytes.
    :raises TarError: when it is not a number the tar format allows.
    """
    field = bytes(field)
    value = field_number(field, 0, len(field)) if field else 0
    if value == BAD:
        raise _number_error(field)
    return value


def _whole_block(block):
    if len(block) < BLOCK:
        raise TarError("truncated tar header")


def checksum(block):
    """Unsigned header checksum with the chksum field counted as spaces."""
    _whole_block(block)
    return unsigned_checksum(bytes(block[:BLOCK]), 0)


def set_checksum(block):
    """Write the checksum of a mutable 512-byte header in place (6 octal digits, NUL, space)."""
    _whole_block(block)
    header = bytearray(block[:BLOCK])
    set_header_checksum(header, 0)
    block[148:156] = header[148:156]


def header_error(block, problem):
    """The TarError for a header_problem() result (the one message both twins give)."""
    if problem == CHECKSUM:
        return TarError("bad tar header checksum")
    if problem == BAD_SIZE:
        return TarError("size out of range in tar header: %d" % field_number(block, 124, 12))
    start = problem - FIELD_BASE
    width = 12 if start in (124, 136) else 8
    return _number_error(bytes(block[start:start + width]))


def parse_header(block):
    """Parse one 512-byte header block.

    :returns: a Header, or None for an all-zero (end-of-archive) block.  Its type is
        header_type()'s and a directory's name has no trailing '/' (tarfile's frombuf).
    :raises TarError: on a checksum mismatch, a malformed number or a negative size.
    """
    block = bytes(block)
    if len(block) < BLOCK:
        raise TarError("truncated tar header")
    problem = header_problem(block, 0)
    if problem == ZERO:
        return None
    if problem != OK:
        raise header_error(block, problem)
    kind = header_type(block, 0)
    end = cstr_len(block, 0, 100)
    if kind == 53:
        end = strip_slashes(block, 0, end)
    name = block[:end]
    gnu = block[257:265] == b"ustar  \0"
    prefix = prefix_len(block, 0)
    if prefix:
        name = block[345:345 + prefix] + b"/" + name
    return Header(name, field_number(block, 100, 8), field_number(block, 108, 8),
                  field_number(block, 116, 8), field_number(block, 124, 12),
                  field_number(block, 136, 12), bytes((kind,)), _cstr(block[157:257]),
                  _cstr(block[265:297]), _cstr(block[297:329]),
                  field_number(block, 329, 8), field_number(block, 337, 8), gnu)


def _pax_records(data):
    """(start, key_start, equals, stop) of each record; TarError when one is malformed."""
    end = len(data)
    pos = 0
    while pos < end and data[pos] != 0:
        stop = pax_record_end(data, pos, end)
        if stop < 0:
            raise TarError("malformed PAX record")
        key = pax_key_start(data, pos)
        yield pos, key, pax_equals(data, key, stop), stop
        pos = stop


def parse_pax(data):
    """Split PAX extended-header data into ordered (key, value) byte pairs.

    :raises TarError: when a record's length prefix or layout is inconsistent.
    """
    data = bytes(data)
    return [(data[key:equals], data[equals + 1:stop - 1])
            for _pos, key, equals, stop in _pax_records(data)]


def filter_pax(data, drop):
    """PAX data with the records whose key is in `drop` removed, the rest kept verbatim.

    :raises TarError: on a malformed record.
    """
    data = bytes(data)
    return b"".join(data[pos:stop] for pos, key, equals, stop in _pax_records(data)
                    if data[key:equals] not in drop)


def drop_time_records(data, ts=0, clamp=False):
    """PAX data without the timestamp records normalize-timestamps drops
    (drops_time_record), the rest verbatim."""
    data = bytes(data)
    return b"".join(data[pos:stop] for pos, key, equals, stop in _pax_records(data)
                    if not drops_time_record(data, key, equals, stop, ts, clamp))


def drops_mtime(data, ts, clamp):
    """Whether normalize-timestamps drops an mtime record of this PAX data."""
    data = bytes(data)
    return any(pax_key(data, key, equals) == 6
               and drops_time_record(data, key, equals, stop, ts, clamp)
               for _pos, key, equals, stop in _pax_records(data))


def format_pax(records):
    """Encode (key, value) pairs as PAX records ("<len> key=value\\n")."""
    out = bytearray()
    for key, value in records:
        body = len(key) + len(value) + 3          # space, '=', newline
        digits = len(str(body))
        length = body + digits
        if len(str(length)) != digits:
            length += 1
        out += b"%d %s=%s\n" % (length, key, value)
    return bytes(out)


def format_number(value, width):
    """Encode a number as zero-padded octal + NUL, or GNU base-256 when it does not fit."""
    if width < 2:
        raise ValueError("a tar number field is at least 2 bytes wide")
    if 0 <= value < 8 ** (width - 1):
        field = bytearray(width)
        put_octal(field, 0, width, value)
        return bytes(field)
    if -(256 ** (width - 1)) // 2 <= value < 256 ** (width - 1) // 2 \
            and -MAX_NUMBER <= value <= MAX_NUMBER:
        raw = (value % 256 ** (width - 1)).to_bytes(width - 1, "big")
        return (b"\xff" if value < 0 else b"\x80") + raw
    raise TarError("number too large for tar header: %d" % value)


def _split_name(name):
    if len(name) <= 100:
        return b"", name
    for i in range(min(len(name) - 1, 155), 0, -1):
        if name[i] == 0x2F and len(name) - i - 1 <= 100 and i <= 155:
            if len(name) - i - 1 > 0:
                return name[:i], name[i + 1:]
    return None


def _ustar(name, prefix, mode, uid, gid, size, mtime, typeflag, linkname, uname, gname,
           devmajor, devminor):
    block = bytearray(BLOCK)
    block[0:len(name)] = name
    block[100:108] = format_number(mode, 8)
    block[108:116] = format_number(uid, 8)
    block[116:124] = format_number(gid, 8)
    block[124:136] = format_number(size, 12)
    block[136:148] = format_number(mtime, 12)
    block[156:157] = typeflag
    block[157:157 + len(linkname)] = linkname
    block[257:265] = b"ustar\x0000"
    block[265:265 + len(uname)] = uname
    block[297:297 + len(gname)] = gname
    block[329:337] = format_number(devmajor, 8)
    block[337:345] = format_number(devminor, 8)
    block[345:345 + len(prefix)] = prefix
    set_checksum(block)
    return bytes(block)


def format_header(name, mode, uid, gid, size, mtime, typeflag, linkname=b"",
                  uname=b"", gname=b"", devmajor=0, devminor=0):
    """Encode a member header as ustar, preceded by a PAX header when a field needs one.

    :returns: 512 bytes, or a PAX header + its padded records + 512 bytes.
    """
    records = []
    split = _split_name(name)
    if split is None:
        records.append((b"path", name))
        split = (b"", name[:100])
    if len(linkname) > 100:
        records.append((b"linkpath", linkname))
        linkname = linkname[:100]
    if len(uname) > 32:
        records.append((b"uname", uname))
        uname = uname[:32]
    if len(gname) > 32:
        records.append((b"gname", gname))
        gname = gname[:32]
    if not 0 <= size < 8 ** 11:
        records.append((b"size", b"%d" % size))
        size = 0 if size < 0 else size
    head = _ustar(split[1], split[0], mode, uid, gid, size, mtime, typeflag, linkname,
                  uname, gname, devmajor, devminor)
    if not records:
        return head
    data = format_pax(records)
    pax = _ustar(b"././@PaxHeader", b"", 0, 0, 0, len(data), 0, XHDTYPE, b"", b"", b"",
                 0, 0)
    return pax + data + bytes(padded(len(data)) - len(data)) + head


def extension_bytes(kind, size, pending, offset):
    """The extended-header bytes pending for the next member once a `kind` header of
    `size` is read after `pending` ones: a global header (g) is capped alone and adds
    nothing.  Refuses more than MAX_EXT_HEADER, one header or the chain (memory stays
    bounded on hostile chains, as Go's archive/tar caps each header)."""
    chained = size if kind == XGLTYPE else size + pending
    if chained > MAX_EXT_HEADER:
        raise TarError("extended header over %d bytes at offset %d" % (MAX_EXT_HEADER, offset))
    return pending if kind == XGLTYPE else chained


def resolve_member(header, ext, offset, globals_=()):
    """Apply extended headers ((type, data) pairs: PAX x, GNU L/K) to a Header.

    :param globals_: the records of earlier global PAX headers, applied first.
    :returns: a Member with tarfile's precedence: the first extended header before a
        member wins over later ones, PAX over the header fields; PAX paths and a
        directory's GNU long name lose their trailing '/'.
    :raises TarError: on a malformed PAX record or value.
    """
    fields = {b"name": header.name, b"linkname": header.linkname, b"size": header.size,
              b"mtime": header.mtime, b"uid": header.uid, b"gid": header.gid}
    xattrs = {}
    is_dir = header.type == DIRTYPE
    for records in [globals_] + [_ext_records(kind, data) for kind, data in reversed(ext)]:
        for key, value in records:
            _apply(fields, xattrs, key, value, is_dir, offset)
    return Member(fields[b"name"], header.type, fields[b"size"], header.mode,
                  fields[b"mtime"], fields[b"uid"], fields[b"gid"], fields[b"linkname"],
                  offset, xattrs or None)


def global_records(data, offset):
    """The records of a global PAX header, which apply to every later member (POSIX,
    tarfile).  A global size is refused: it would reframe every member after it."""
    records = _ext_records(XHDTYPE, data)
    for key, _value in records:
        if pax_key(key, 0, len(key)) == 3:
            raise TarError("global PAX header sets a size at offset %d" % offset)
    return records


def _ext_records(kind, data):
    if kind == GNU_LONGNAME:
        return [(b"L", data)]
    if kind == GNU_LONGLINK:
        return [(b"K", data)]
    try:
        return parse_pax(data)
    except TarError:
        raise TarError("malformed PAX record") from None


def _apply(fields, xattrs, key, value, is_dir, offset):
    if key == b"L" or key == b"K":
        value = _cstr(value)
        if key == b"L":
            fields[b"name"] = value[:long_name_end(value, 0, len(value), is_dir)]
        else:
            fields[b"linkname"] = value
        return
    which = pax_key(key, 0, len(key))
    if which == 1:
        fields[b"name"] = value[:strip_slashes(value, 0, len(value))]
    elif which == 8:                    # GNU.sparse.name: the name as stored (tarfile)
        fields[b"name"] = value
    elif which == 2:
        fields[b"linkname"] = value
    elif which in (3, 4, 5, 6):
        number = pax_time(value, 0, len(value)) if which == 6 else \
            pax_decimal(value, 0, len(value))
        if number == BAD or (which == 3 and not size_ok(number)):
            raise TarError("malformed PAX record at offset %d" % offset)
        fields[(b"size", b"uid", b"gid", b"mtime")[which - 3]] = number
    elif key.startswith(b"SCHILY.xattr."):
        xattrs[key[13:]] = value
