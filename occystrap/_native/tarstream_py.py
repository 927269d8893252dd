"""Tar header parsing and formatting (pure-Python twin of tarstream.pyx).

Implements the POSIX.1-1988 ustar header, the GNU extensions CPython tarfile reads
(magic "ustar  ", base-256 numbers, L/K long names) and POSIX.1-2001 PAX records.
CPython tarfile is the oracle: what it reads from a header, we read too.
"""
import math

from ._common import (AREGTYPE, BLOCK, DIRTYPE, GNU_LONGLINK, GNU_LONGNAME, Member, TarError,
                      XHDTYPE)

__all__ = ["Header", "parse_header", "parse_number", "parse_pax", "format_pax",
           "format_number", "format_header", "checksum", "set_checksum", "padded",
           "resolve_member", "filter_pax"]

from collections import namedtuple

Header = namedtuple("Header", "name mode uid gid size mtime type linkname uname gname "
                              "devmajor devminor gnu")


def padded(size):
    """Bytes a member of `size` occupies, rounded up to whole 512-byte blocks."""
    return (size + BLOCK - 1) // BLOCK * BLOCK


def _cstr(field):
    end = field.find(b"\0")
    return bytes(field if end < 0 else field[:end])


def parse_number(field):
    """Decode a numeric header field: octal text, or GNU base-256 when the top bit is set.

    :param field: the raw field bytes.
    :raises TarError: when the text is not octal.
    """
    field = bytes(field)
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] == 0xFF:                      # negative: two's complement
            value -= 256 ** (len(field) - 1)
        return value
    text = _cstr(field).strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarError("invalid number in tar header: %r" % text) from None


def checksum(block):
    """Unsigned header checksum with the chksum field counted as spaces."""
    return sum(block[:148]) + 256 + sum(block[156:512])


def _signed_checksum(block):
    # Some old tar implementations summed signed chars; tarfile accepts both.
    high = sum(1 for b in block[:148] if b > 127) + sum(1 for b in block[156:512] if b > 127)
    return checksum(block) - 256 * high


def parse_header(block):
    """Parse one 512-byte header block.

    :returns: a Header, or None for an all-zero (end-of-archive) block.
    :raises TarError: on a checksum mismatch or a malformed number.
    """
    block = bytes(block)
    if len(block) < BLOCK:
        raise TarError("truncated tar header")
    if block.count(0) == BLOCK:
        return None
    stored = parse_number(block[148:156])
    if stored != checksum(block) and stored != _signed_checksum(block):
        raise TarError("bad tar header checksum")
    magic = block[257:265]
    gnu = magic == b"ustar  \0"
    name = _cstr(block[0:100])
    if not gnu and magic[:6] == b"ustar\0":
        prefix = _cstr(block[345:500])
        if prefix:
            name = prefix + b"/" + name
    return Header(name, parse_number(block[100:108]), parse_number(block[108:116]),
                  parse_number(block[116:124]), parse_number(block[124:136]),
                  parse_number(block[136:148]), block[156:157], _cstr(block[157:257]),
                  _cstr(block[265:297]), _cstr(block[297:329]),
                  parse_number(block[329:337]), parse_number(block[337:345]), gnu)


def parse_pax(data):
    """Split PAX extended-header data into ordered (key, value) byte pairs.

    :raises TarError: when a record's length prefix is inconsistent.
    """
    data = bytes(data)
    records = []
    pos = 0
    end = len(data)
    while pos < end and data[pos] != 0:
        space = data.find(b" ", pos)
        if space < 0:
            raise TarError("malformed PAX record")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarError("malformed PAX record") from None
        stop = pos + length
        if length <= 0 or stop > end or data[stop - 1] != 0x0A:
            raise TarError("malformed PAX record")
        record = data[space + 1:stop - 1]
        equals = record.find(b"=")
        if equals < 0:
            raise TarError("malformed PAX record")
        records.append((record[:equals], record[equals + 1:]))
        pos = stop
    return records


def filter_pax(data, drop):
    """PAX data with the records whose key is in `drop` removed, the rest kept verbatim.

    :raises TarError: on a malformed record.
    """
    data = bytes(data)
    kept = []
    pos = 0
    for key, value in parse_pax(data):
        length = int(data[pos:data.index(b" ", pos)])
        if key not in drop:
            kept.append(data[pos:pos + length])
        pos += length
    return b"".join(kept)


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
    if 0 <= value < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, value)
    if -(256 ** (width - 1)) // 2 <= value < 256 ** (width - 1) // 2:
        raw = (value % 256 ** (width - 1)).to_bytes(width - 1, "big")
        return (b"\xff" if value < 0 else b"\x80") + raw
    raise TarError("number too large for tar header: %d" % value)


def set_checksum(block):
    """Write the checksum of a mutable 512-byte header in place (6 octal digits, NUL, space)."""
    block[148:156] = b"        "
    block[148:156] = b"%06o\0 " % checksum(block)


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


def resolve_member(header, ext, offset):
    """Apply extended headers ((type, data) pairs: PAX x, GNU L/K) to a Header.

    :returns: a Member whose fields follow CPython tarfile's precedence (PAX over GNU
        long names over the header); directories lose their trailing slash.
    """
    name, linkname = header.name, header.linkname
    size, mtime, uid, gid = header.size, header.mtime, header.uid, header.gid
    xattrs = None
    for kind, data in ext:
        if kind == GNU_LONGNAME:
            name = data.split(b"\0", 1)[0]
        elif kind == GNU_LONGLINK:
            linkname = data.split(b"\0", 1)[0]
        else:
            for key, value in parse_pax(data):
                try:
                    if key == b"path":
                        name = value
                    elif key == b"linkpath":
                        linkname = value
                    elif key == b"size":
                        size = int(value)
                    elif key == b"mtime":
                        mtime = math.floor(float(value))
                    elif key == b"uid":
                        uid = int(value)
                    elif key == b"gid":
                        gid = int(value)
                    elif key.startswith(b"SCHILY.xattr."):
                        xattrs = xattrs or {}
                        xattrs[key[13:]] = value
                except ValueError:
                    raise TarError("malformed PAX record at offset %d" % offset) from None
    kind = header.type
    if kind == AREGTYPE and name.endswith(b"/"):
        kind = DIRTYPE
    if kind == DIRTYPE and len(name) > 1:
        name = name.rstrip(b"/")
    return Member(name, kind, size, header.mode, mtime, uid, gid, linkname, offset, xattrs)
