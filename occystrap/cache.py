"""The layer cache (`--layer-cache FILE`): registry pushes skip layers already produced.

A CI farm re-pushing many images that share base layers rewrites and uploads those
layers once.  Each entry maps (input layer diff_id, filters hash, output compression,
level) to the blob an earlier run produced: its digest, size, media type, output
diff_id and the repository it was uploaded to.  On a hit whose blob the destination
has (or can mount from that repository), the layer is neither fetched nor rewritten
nor uploaded (0.4.17 B.16, fixed).

Fixed from 0.4.17 (E.2 #6): entries are keyed by each layer's own input and written
when that layer's upload commits (0.4.17 paired inputs and blobs through a FIFO, so
out-of-order uploads cached wrong blobs: bug A); a hit yields the *output* diff_id,
so the rewritten config matches the blobs (0.4.17 kept the input ids: bug B).

The file is SQLite in WAL mode with a busy timeout, so concurrent processes and
threads can share it.  0.4.17's JSON cache, another file or a damaged database is
never overwritten: it gives one warning and the run goes on without a cache.

`--layer-cache redis://HOST:PORT/DB` keeps the same entries in Redis instead
(distributed/layercache.py), so processes on several hosts and several proxies share
them; both backends take their key (cache_key), Entry and warnings from here.
"""
import dataclasses
import hashlib
import json
import logging
import os
import threading
import time

from .compression import DEFAULT_LEVELS, engine
from .jsonparse import parse_json
from .model.tree import Descriptor, Origin
from .transports.base import LayerResult

LOG = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# Bump when a filter's output for the same input and options changes, so old entries
# stop matching (0.4.17's LAYER_REWRITE_VERSION played this part).
REWRITE_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT = 60.0             # seconds another process may hold the write lock

SCHEMA = """CREATE TABLE IF NOT EXISTS layers (
    input_diff_id TEXT NOT NULL,
    filters_hash TEXT NOT NULL,
    compression TEXT NOT NULL,
    level INTEGER NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    diff_id TEXT NOT NULL,
    diff_size INTEGER NOT NULL,
    origin TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (input_diff_id, filters_hash, compression, level))"""


@dataclasses.dataclass(frozen=True)
class Entry:
    """What an earlier run produced from one input layer."""
    digest: str                 # the output blob, sha256:...
    size: int                   # its (compressed) size
    media_type: str
    diff_id: str                # the output layer's diff_id (after the filters)
    diff_size: int              # its uncompressed size
    origin: str                 # "host/repository" the blob was uploaded to
    created: float              # time.time() when the upload committed


KEY_FIELDS = ("input_diff_id", "filters_hash", "compression", "level")


def level_of(compression, level):
    """The effective compression level (None means the codec's default)."""
    return DEFAULT_LEVELS.get(compression, 0) if level is None else int(level)


def cache_key(input_diff_id, fhash, compression, level):
    """An entry's key parts (KEY_FIELDS), the level made effective so that None and the
    codec's default are one key; every backend keys by exactly this."""
    return (input_diff_id, fhash, compression, level_of(compression, level))


def entry_for(result, origin):
    """The Entry a committed upload (result: a LayerResult) becomes."""
    return Entry(result.digest, result.blob_size, result.media_type, result.diff_id,
                 result.size, origin, time.time())


def not_used(where, reason):
    """One warning for a cache that cannot be opened; the run goes on without one."""
    LOG.warning("Layer cache %s not used: %s; running without a layer cache", where, reason)


def failed(where, exc):
    """One warning for a cache that broke mid-run; the caller stops using it."""
    LOG.warning("Layer cache %s failed (%s); continuing without it", where, exc)


def _engine(compression, level):
    """The codec library, part of a blob's identity (ISA-L gzip bytes differ from zlib's)."""
    return engine(compression, level_of(compression, level)) \
        if compression in DEFAULT_LEVELS else compression


def filters_hash(filters, compression, level=None):
    """16 hex digits naming what a layer goes through: the content filters' cache
    tokens in order, the codec and its level.  Observers (search, inspect) do not
    change the bytes, so they do not change the hash."""
    tokens = [f.cache_token for f in filters if f.changes_content]
    text = json.dumps({"filters": tokens, "compression": compression,
                       "engine": _engine(compression, level),
                       "level": level_of(compression, level), "rewrite": REWRITE_VERSION},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class NotACache(Exception):
    """The file exists but is not ours to use."""


def _sniff(path):
    """'new', 'sqlite', 'json' (0.4.17's cache) or 'other'."""
    try:
        if os.path.getsize(path) == 0:
            return "new"            # SQLite takes an empty file as an empty database
    except FileNotFoundError:
        return "new"
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
        if head == SQLITE_MAGIC:
            return "sqlite"
        if not head.lstrip().startswith(b"{"):
            return "other"
        f.seek(0)
        try:
            data = parse_json(f.read())
        except ValueError:
            return "other"
    return "json" if isinstance(data, dict) and "layers" in data else "other"


def open_cache(path):
    """A LayerCache for path, a RedisLayerCache for a redis:// or rediss:// URL, or None
    (after one warning) when it cannot be used."""
    if not path:
        return None
    from .distributed import is_redis_url
    if is_redis_url(path):
        from .distributed.layercache import open_redis_cache
        return open_redis_cache(path)
    import sqlite3      # here, not at the top: it costs every run ~20 ms of start-up
    try:
        kind = _sniff(path)
        if kind == "json":
            raise NotACache("it is an occystrap 0.4.17 JSON cache; this version keeps its "
                            "cache in SQLite and leaves that file alone (give --layer-cache "
                            "a new file name)")
        if kind == "other":
            raise NotACache("it is not an SQLite database")
        return LayerCache(path)
    except (NotACache, sqlite3.Error, OSError) as exc:
        not_used(path, exc)
        return None


class LayerCache:
    """One SQLite connection shared by the copy's threads under a lock (each statement
    is tiny); other processes are kept consistent by SQLite's own locking."""

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        self._broken = False
        import sqlite3
        self._error = sqlite3.Error
        self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None,
                                   check_same_thread=False)
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    def _setup(self):
        db = self._db
        tables = {row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "layers" not in tables:
            raise NotACache("it is an SQLite database of something else")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise NotACache("it was written by a newer occystrap (schema %d)" % version)
        if db.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise NotACache("SQLite cannot use WAL mode for it")
        db.execute("PRAGMA synchronous = NORMAL")      # WAL + NORMAL: never corrupt
        db.execute(SCHEMA)
        if version < SCHEMA_VERSION:
            db.execute("PRAGMA user_version = %d" % SCHEMA_VERSION)

    def _run(self, statement, args):
        """Execute under the lock; a database error disables the cache (one warning)."""
        with self._lock:
            if self._broken:
                return None
            try:
                return self._db.execute(statement, args).fetchone()
            except self._error as exc:
                self._broken = True
                failed(self.path, exc)
                return None

    def lookup(self, input_diff_id, fhash, compression, level):
        row = self._run("SELECT digest, size, media_type, diff_id, diff_size, origin, created "
                        "FROM layers WHERE input_diff_id = ? AND filters_hash = ? AND "
                        "compression = ? AND level = ?",
                        cache_key(input_diff_id, fhash, compression, level))
        return Entry(*row) if row else None

    def store(self, input_diff_id, fhash, compression, level, result, origin):
        """Record the blob that input_diff_id became (result: a LayerResult)."""
        self._run("INSERT OR REPLACE INTO layers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  cache_key(input_diff_id, fhash, compression, level)
                  + dataclasses.astuple(entry_for(result, origin)))

    def entries(self):
        """Every entry as a dict (for tests and debugging)."""
        with self._lock:
            cursor = self._db.execute("SELECT * FROM layers ORDER BY created")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def close(self):
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _descriptor(entry):
    """The blob of a cache entry as a descriptor whose origin is where it was uploaded."""
    host, _, repository = entry.origin.partition("/")
    return Descriptor(entry.media_type, entry.digest, entry.size,
                      {"mediaType": entry.media_type, "digest": entry.digest,
                       "size": entry.size},
                      Origin(host, repository) if host and repository else None)


class CopyCache:
    """The cache as one copy into one sink uses it: the key parts the sink and the
    filters fix, and the hit/miss counts for the log."""

    def __init__(self, cache, sink, filters):
        self.cache = cache
        self.sink = sink
        self.compression = sink.compression
        self.level = level_of(sink.compression, sink.compression_level)
        self.hash = filters_hash(filters, self.compression, self.level)
        # observers (search, inspect) must see every layer's members: store, never skip
        self.lookups = all(f.changes_content for f in filters)
        self.hits = self.misses = self.stored = 0
        self._lock = threading.Lock()

    @staticmethod
    def supports(sink):
        """Whether sink stores compressed blobs it can reuse by digest (registry://)."""
        return sink.compression != "none" and sink.blob_origin is not None

    @classmethod
    def for_copy(cls, cache, sink, filters):
        """A CopyCache, or None when there is no cache or the sink cannot use one."""
        if cache is None or not cls.supports(sink):
            return None
        return cls(cache, sink, filters)

    def _count(self, name):
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def reuse(self, ref):
        """A LayerResult from the cache when the destination has (or mounted) the blob;
        None means: process the layer."""
        if not ref.diff_id or not self.lookups:
            return None
        entry = self.cache.lookup(ref.diff_id, self.hash, self.compression, self.level)
        if entry is None or not self.sink.try_reuse(_descriptor(entry)):
            self._count("misses")
            return None
        self._count("hits")
        LOG.debug("layer %d (%s): layer cache hit %s", ref.index, ref.name, entry.digest)
        return LayerResult(index=ref.index, diff_id=entry.diff_id, size=entry.diff_size,
                           digest=entry.digest, blob_size=entry.size,
                           media_type=entry.media_type, source=ref)

    def remember(self, ref, result):
        """Called once ref's upload committed: key the entry by ref's own input."""
        if ref.diff_id:
            origin = self.sink.blob_origin
            self.cache.store(ref.diff_id, self.hash, self.compression, self.level, result,
                             "%s/%s" % (origin.host, origin.repository))
            self._count("stored")

    def summary(self):
        return "Layer cache: %d hits, %d misses, %d stored" % (self.hits, self.misses,
                                                                self.stored)
