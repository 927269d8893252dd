"""The check every blob read from outside gets while it streams: it must count to its
descriptor's size and hash to its digest (registry://, ocidir://, oci-archive://)."""
import hashlib

from ..errors import InputError


class BlobCheck:
    """Counts and hashes a blob's bytes; fails as soon as there are too many, and at
    the end when there are too few or they hash to something else."""

    def __init__(self, digest, size=None, where=""):
        algorithm, _, _ = digest.partition(":")
        if algorithm not in hashlib.algorithms_available:
            raise InputError("unsupported digest algorithm: %s" % digest)
        self.digest, self.size = digest, size
        self._where = "%s: " % where if where else ""
        self._hash = hashlib.new(algorithm)
        self.pos = 0

    def update(self, data):
        self._hash.update(data)
        self.pos += len(data)
        if self.size is not None and self.pos > self.size:
            raise InputError("%sblob %s is larger than its descriptor says (%d bytes)"
                             % (self._where, self.digest, self.size))

    def finish(self):
        if self.size is not None and self.pos != self.size:
            raise InputError("%sblob %s is truncated: %d of %d bytes"
                             % (self._where, self.digest, self.pos, self.size))
        got = "%s:%s" % (self.digest.partition(":")[0], self._hash.hexdigest())
        if got != self.digest:
            raise InputError("%sblob %s failed digest verification (got %s)"
                             % (self._where, self.digest, got))
