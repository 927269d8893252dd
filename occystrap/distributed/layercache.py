"""`--layer-cache redis://HOST:PORT/DB`: the layer cache (cache.py) kept in Redis, so
processes on several hosts, Celery workers and several `occystrap proxy` instances
share the layers each of them rewrote.

Same interface, key parts (cache_key) and Entry as the SQLite LayerCache.  Each entry
is one JSON string under

    occystrap:layer:v<VALUE_VERSION>:r<REWRITE_VERSION>:<input_diff_id>:<filters_hash>:
        <compression>:<level>

The rewrite version is in the filters hash already; it is in the key as well so that
the entries an older rewriter produced can be found (and deleted) by pattern.

Like a bad cache file, Redis that cannot be used never fails a run: unreachable at
open, a bad URL, or redis-py not installed gives one warning (saying what to install)
and the run goes on without a cache.  The cache only saves work, and a CI job whose
image lacks the extra should still push, only slower.  An error mid-run gives one
warning and disables the cache for the rest of the run (or the proxy's life).
"""
import dataclasses
import json
import logging
import threading

from ..cache import KEY_FIELDS, REWRITE_VERSION, Entry, cache_key, entry_for, failed, not_used
from ..errors import OptionError
from . import KEY_PREFIX, need, redis_client, shown

LOG = logging.getLogger(__name__)

VALUE_VERSION = 1           # bump when the JSON value changes shape
NAMESPACE = "%slayer:v%d:r%d:" % (KEY_PREFIX, VALUE_VERSION, REWRITE_VERSION)
SCAN_BATCH = 500
ENTRY_FIELDS = tuple(field.name for field in dataclasses.fields(Entry))


def redis_key(input_diff_id, fhash, compression, level):
    return NAMESPACE + ":".join(str(part) for part in
                                cache_key(input_diff_id, fhash, compression, level))


def open_redis_cache(url):
    """A RedisLayerCache for url, or None after one warning (see the module docstring)."""
    try:
        redis = need("redis")
        client = redis_client(url)
    except OptionError as exc:
        not_used(shown(url), exc)
        return None
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        not_used(shown(url), exc)
        return None
    return RedisLayerCache(url, client, redis.RedisError)


class RedisLayerCache:
    """One redis.Redis (its connection pool is thread-safe) shared by the copy's threads;
    other processes see each entry as soon as it is SET."""

    def __init__(self, url, client, error):
        self.path = shown(url)
        self._client = client
        self._error = error
        self._lock = threading.Lock()
        self._broken = False

    def _run(self, call, *args):
        """call(*args) on the client; a Redis error disables the cache (one warning)."""
        if self._broken:
            return None
        try:
            return call(*args)
        except self._error as exc:
            with self._lock:
                first, self._broken = not self._broken, True
            if first:
                failed(self.path, exc)
            return None

    def lookup(self, input_diff_id, fhash, compression, level):
        value = self._run(self._client.get, redis_key(input_diff_id, fhash, compression,
                                                      level))
        return _entry(value) if value is not None else None

    def store(self, input_diff_id, fhash, compression, level, result, origin):
        """Record the blob that input_diff_id became (result: a LayerResult)."""
        key = cache_key(input_diff_id, fhash, compression, level)
        value = dict(zip(KEY_FIELDS, key), **dataclasses.asdict(entry_for(result, origin)))
        self._run(self._client.set, redis_key(*key), json.dumps(value, sort_keys=True))

    def entries(self):
        """Every entry as a dict, oldest first (for tests and debugging); SCAN, so a
        big cache does not block Redis."""
        return self._run(self._entries) or []

    def _entries(self):
        keys = list(self._client.scan_iter(match=NAMESPACE + "*", count=SCAN_BATCH))
        found = []
        for start in range(0, len(keys), SCAN_BATCH):
            for value in self._client.mget(keys[start:start + SCAN_BATCH]):
                row = _row(value)
                if row is not None:
                    found.append(row)
        return sorted(found, key=lambda row: row["created"])

    def close(self):
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _row(value):
    """The JSON value as a dict with every key and Entry field, or None when it is not
    ours (a miss, not an error)."""
    try:
        row = json.loads(value)
    except (TypeError, ValueError):
        return None
    fields = KEY_FIELDS + ENTRY_FIELDS
    return row if isinstance(row, dict) and all(f in row for f in fields) else None


def _entry(value):
    row = _row(value)
    if row is None:
        LOG.debug("Layer cache: ignoring a value that is not an entry: %.80r", value)
        return None
    return Entry(**{name: row[name] for name in ENTRY_FIELDS})
