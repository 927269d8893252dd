"""tar:// sink: writes a docker-load tarball (`docker save` v1.2 layout).

Layers are named `<diff_id hex>/layer.tar`, the config `<sha256 of its bytes>.json`, and
RepoTags keep the full image name (upstream dropped the registry host, E.2 #12).  The
tarball is built under a temporary name in the destination directory and renamed into
place only when complete, so a failed run leaves nothing behind.  What may stand at
PATH (a regular file; a symlink is followed; never a device or FIFO) is outpath.py's rule.

Streaming without temp files: the first layer to start owns the output file and is
written straight into it, its header patched in once its digest is known; layers that
run at the same time in other threads spool to temporary files and are appended when
the output is free.  With -j 1 nothing is ever spooled.
"""
import hashlib
import json
import os
import shutil
import tempfile
import threading

from ... import tarindex
from ...errors import OutputError
from ...fileslice import FileSlice
from ...model import digest_hex, repo_tags, sha256_digest
from ..._native import rewrite, tarstream
from ..._native._common import BLOCK, RECORD, REGTYPE, TarError
from ..base import ImageSink, LayerWriter
from ..outpath import file_output


_UMASK = os.umask(0o22)         # read once, at import, while single-threaded
os.umask(_UMASK)


def _append(spool, out, size):
    """Copy a spooled layer onto the end of out inside the kernel (no userspace copy)."""
    spool.flush()
    out.flush()
    src, dst = spool.fileno(), out.fileno()
    offset, end = 0, out.tell()
    try:
        while offset < size:
            done = os.copy_file_range(src, dst, size - offset, offset, end + offset)
            if done <= 0:
                raise OSError("copy_file_range made no progress")
            offset += done
    except OSError:                     # not supported here: copy through userspace
        spool.seek(offset)
        out.seek(end + offset)
        shutil.copyfileobj(spool, out, 1 << 20)
    out.seek(end + size)


def _header(name, size):
    return tarstream.format_header(name.encode(), 0o644, 0, 0, size, 0, REGTYPE)


class _LayerWriter(LayerWriter):
    """Writes one layer: straight into the tarball when it is the next one due and the
    file is free, else into a spool file appended in layer order later (so the output is
    byte-for-byte the same whatever -j is)."""

    def __init__(self, sink, index):
        self._sink = sink
        self._index = index
        self._size = 0
        with sink._lock:
            self._direct = sink._next == index and not sink._busy
            if self._direct:
                sink._busy = True
        if self._direct:
            self._start = sink._file.tell()
            sink._file.write(bytes(BLOCK))         # placeholder header
            self._out = sink._file
        else:
            self._out = tempfile.TemporaryFile(dir=sink._dir, prefix=".occystrap-spool-")

    def write(self, data):
        self._out.write(data)
        self._size += len(data)

    def commit(self, result):
        sink = self._sink
        name = "%s/layer.tar" % digest_hex(result.diff_id)
        with sink._lock:
            if self._direct:
                out = sink._file
                if name in sink._names:           # a repeated layer: drop the copy
                    out.seek(self._start)
                    out.truncate()
                else:
                    end = out.tell()
                    out.seek(self._start)
                    out.write(_header(name, self._size))
                    out.seek(end)
                    out.write(bytes(-self._size % BLOCK))
                    sink._written(name, self._size)
                sink._busy = False
                sink._next += 1
            else:
                sink._pending[self._index] = (self, name)
            sink._drain()

    def append_to(self, out, name):
        """Append this spooled layer (header, data, padding) to the tarball."""
        out.write(_header(name, self._size))
        _append(self._out, out, self._size)
        out.write(bytes(-self._size % BLOCK))

    def abort(self):
        sink = self._sink
        if self._direct:
            with sink._lock:
                sink._file.seek(self._start)
                sink._file.truncate()
                sink._busy = False
        else:
            self._out.close()


class TarballSink(ImageSink):
    def __init__(self, path):
        self._given = path
        self.path = os.path.abspath(path)
        self._dir = os.path.dirname(self.path)
        self._file = None
        self._tmp = None
        self._names = {}
        self._lock = threading.Lock()
        self._next = 0              # index of the next layer due in the tarball
        self._busy = False          # a layer is being written straight into the file
        self._pending = {}          # index -> (spooled writer, member name)
        self._manifest = None

    @classmethod
    def from_uri(cls, uri, options):
        sink = cls(uri.path)
        sink._check_path()          # before the source is opened (a daemon push may be slow)
        return sink

    def _check_path(self):
        """Resolve the file the tarball will replace (outpath.file_output's rules)."""
        self.path = file_output(self._given)
        self._dir = os.path.dirname(self.path)

    @property
    def local_path(self):
        return self.path

    def begin(self, source):
        self._check_path()
        self.image, self.tag = source.qualified_image, source.tag
        try:
            fd, self._tmp = tempfile.mkstemp(prefix="." + os.path.basename(self.path) + ".",
                                             suffix=".partial", dir=self._dir)
        except OSError as exc:
            raise OutputError("cannot write to %s: %s" % (self._dir, exc.strerror)) from None
        self._file = os.fdopen(fd, "w+b")

    def open_layer(self, ref):
        return _LayerWriter(self, ref.index)

    def _written(self, name, size):
        self._names[name] = size

    def _drain(self):
        """Append spooled layers that are now due, in order (caller holds the lock)."""
        while not self._busy and self._next in self._pending:
            writer, name = self._pending.pop(self._next)
            if name not in self._names:
                writer.append_to(self._file, name)
                self._written(name, writer._size)
            writer._out.close()
            self._next += 1

    def _add(self, name, data):
        self._file.write(_header(name, len(data)))
        self._file.write(data)
        self._file.write(bytes(-len(data) % BLOCK))

    def finish(self, config_bytes, results):
        config_name = digest_hex(sha256_digest(config_bytes)) + ".json"
        layers = ["%s/layer.tar" % digest_hex(r.diff_id) for r in results]
        tags = repo_tags(self.image, self.tag)
        self._manifest = [{"Config": config_name, "RepoTags": tags, "Layers": layers}]
        with self._lock:
            self._add(config_name, config_bytes)
            self._add("manifest.json", json.dumps(self._manifest).encode())
            if tags and layers:
                repositories = {self.image: {self.tag: layers[-1].split("/")[0]}}
                self._add("repositories", json.dumps(repositories).encode())
            pos = self._file.tell()
            self._file.write(bytes(-(-(pos + 2 * BLOCK) // RECORD) * RECORD - pos))
            self._file.close()
        os.chmod(self._tmp, 0o666 & ~_UMASK)
        os.replace(self._tmp, self.path)
        self._tmp = None

    def abort(self):
        if self._file is not None and not self._file.closed:
            self._file.close()
        if self._tmp and os.path.exists(self._tmp):
            os.unlink(self._tmp)
        self._tmp = None

    def verify(self, full=False):
        """Re-index the written tarball; with full, re-hash every layer against its name."""
        errors = []
        try:
            with open(self.path, "rb") as fileobj:
                members = {m.name.decode(): m for m in tarindex.iter_members(fileobj)}
        except (OSError, TarError) as exc:
            return ["Cannot read output tarball %s: %s" % (self.path, exc)]
        entry = self._manifest[0]
        for name in ["manifest.json", entry["Config"]] + entry["Layers"]:
            if name not in members:
                errors.append("Member missing from tarball: %s" % name)
        for name, size in self._names.items():
            member = members.get(name)
            if member is not None and member.size != size:
                errors.append("Layer size mismatch for %s: expected %d, got %d"
                              % (name, size, member.size))
            elif member is not None and full:
                errors.extend(_verify_layer(self.path, name, member))
        return errors


def _verify_layer(path, name, member):
    scanner = rewrite.TarRewriter(rewrite=False)
    digest = hashlib.sha256()
    try:
        with FileSlice(path, member.offset, member.size) as fileobj:
            for chunk in iter(lambda: fileobj.read(1 << 20), b""):
                digest.update(chunk)
                scanner.feed(chunk)
        scanner.close()
    except TarError as exc:
        return ["Layer %s is not a valid tar: %s" % (name, exc)]
    if digest.hexdigest() != name.split("/")[0]:
        return ["Layer %s content hashes to sha256:%s" % (name, digest.hexdigest())]
    return []
