"""Member index of a seekable tar file: headers are parsed, data is seeked over.

Used where random access beats streaming: the outer docker-save tarball (tar:// input)
and stored layers being expanded (dir expand, oci bundles).  It applies PAX and GNU
long-name extensions like the streaming rewriter does and yields the same Member tuples,
with `offset` the absolute file position of the member's data.
"""
from ._native import tarstream
from ._native._common import BLOCK, GNU_SPARSE, TarError, XGLTYPE


def _read_exact(fileobj, size, offset):
    data = fileobj.read(size)
    if len(data) != size:
        raise TarError("truncated tar archive at offset %d" % offset)
    return data


def iter_members(fileobj, start=0, end=None):
    """Yield a Member for each entry of the tar archive in fileobj[start:end] (end: the
    end of the file when None).

    :raises TarError: on a bad header or a truncated archive, as TarRewriter does: the
        end-of-archive blocks may be missing, nothing else may.
    """
    if end is None:
        end = fileobj.seek(0, 2)
    offset = start
    ext = []
    ext_bytes = 0
    globals_ = []
    while True:
        if offset == end and not ext:
            if offset == start:
                raise TarError("empty tar stream")
            return                                   # no end-of-archive blocks: tolerated
        if offset + BLOCK > end:
            raise TarError("truncated tar archive at offset %d" % offset)
        fileobj.seek(offset)
        block = _read_exact(fileobj, BLOCK, offset)
        try:
            header = tarstream.parse_header(block)
        except TarError as exc:
            raise TarError("%s at offset %d" % (exc, offset)) from None
        if header is None:
            if ext:
                raise TarError("extended header without a member at offset %d" % offset)
            return
        offset += BLOCK
        if tarstream.is_extension(header.type[0]):
            ext_bytes = tarstream.extension_bytes(header.type, header.size, ext_bytes,
                                                  offset - BLOCK)
            if offset + tarstream.padded(header.size) > end:
                raise TarError("truncated tar archive at offset %d" % offset)
            data = _read_exact(fileobj, header.size, offset)
            if header.type == XGLTYPE:
                globals_ += tarstream.global_records(data, offset)
            else:
                ext.append((header.type, data))
            offset += tarstream.padded(header.size)
            continue
        if header.type == GNU_SPARSE:
            tarstream.check_sparse(block, offset - BLOCK, False)
        if header.type == GNU_SPARSE and block[482]:
            count = 0
            while True:
                fileobj.seek(offset)
                extension = _read_exact(fileobj, BLOCK, offset)
                tarstream.check_sparse(extension, offset, True)
                offset += BLOCK
                count += 1
                if not extension[504]:
                    break
                tarstream.check_sparse_blocks(count, offset)
        member = tarstream.resolve_member(header, ext, offset, globals_)
        ext = []
        ext_bytes = 0
        if tarstream.has_data(member.type[0]):
            if offset + tarstream.padded(member.size) > end:
                raise TarError("truncated tar archive at offset %d" % offset)
            offset += tarstream.padded(member.size)
        yield member


def tar_error(path):
    """None when the file at path reads as a well-formed tar, else the reason (verify)."""
    try:
        with open(path, "rb") as fileobj:
            for _member in iter_members(fileobj):
                pass
    except TarError as exc:
        return str(exc)
    return None
