"""Member index of a seekable tar file: headers are parsed, data is seeked over.

Used where random access beats streaming: the outer docker-save tarball (tar:// input)
and stored layers being expanded (dir expand, oci bundles).  It applies PAX and GNU
long-name extensions like the streaming rewriter does and yields the same Member tuples,
with `offset` the absolute file position of the member's data.
"""
from ._native import tarstream
from ._native._common import (BLOCK, GNU_LONGLINK, GNU_LONGNAME, GNU_SPARSE, MAX_EXT_HEADER,
                              NO_DATA_TYPES, TarError, XGLTYPE, XHDTYPE)


def _read_exact(fileobj, size, offset):
    data = fileobj.read(size)
    if len(data) != size:
        raise TarError("truncated tar archive at offset %d" % offset)
    return data


def iter_members(fileobj, start=0, end=None):
    """Yield a Member for each entry of the tar archive in fileobj[start:end].

    :raises TarError: on a bad header or a truncated archive.
    """
    offset = start
    ext = []
    while True:
        if end is not None and offset + BLOCK > end:
            if ext or offset < end:
                raise TarError("truncated tar archive at offset %d" % offset)
            return
        fileobj.seek(offset)
        block = fileobj.read(BLOCK)
        if not block and not ext:
            return                                   # EOF at a header boundary: tolerated
        if len(block) < BLOCK:
            raise TarError("truncated tar archive at offset %d" % offset)
        try:
            header = tarstream.parse_header(block)
        except TarError as exc:
            raise TarError("%s at offset %d" % (exc, offset)) from None
        if header is None:
            return
        offset += BLOCK
        if header.type in (XHDTYPE, XGLTYPE, GNU_LONGNAME, GNU_LONGLINK):
            if header.size > MAX_EXT_HEADER:
                raise TarError("extended header too large at offset %d" % offset)
            data = _read_exact(fileobj, header.size, offset)
            offset += tarstream.padded(header.size)
            if header.type != XGLTYPE:
                ext.append((header.type, data))
            continue
        if header.type == GNU_SPARSE and block[482]:
            while True:
                fileobj.seek(offset)
                extension = _read_exact(fileobj, BLOCK, offset)
                offset += BLOCK
                if not extension[504]:
                    break
        member = tarstream.resolve_member(header, ext, offset)
        ext = []
        yield member
        if not (member.type and member.type[0] in NO_DATA_TYPES):
            offset += tarstream.padded(member.size)
        if end is not None and offset > end:
            raise TarError("truncated tar archive at offset %d" % offset)


def tar_error(path):
    """None when the file at path reads as a well-formed tar, else the reason (verify)."""
    try:
        with open(path, "rb") as fileobj:
            for _member in iter_members(fileobj):
                pass
    except TarError as exc:
        return str(exc)
    return None
