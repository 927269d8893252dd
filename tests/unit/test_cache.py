"""occystrap/cache.py: the SQLite layer cache, its key and how it treats files that are
not its own (0.4.17's JSON cache, garbage, a damaged database) -- never overwritten."""
import concurrent.futures
import hashlib
import json
import logging
import os
import re
import sqlite3

import pytest

from occystrap.cache import filters_hash, level_of, open_cache
from occystrap.filters import build_filter
from occystrap.transports.base import LayerResult

IN = "sha256:" + "1" * 64


def result(n, digest=None):
    return LayerResult(index=n, diff_id="sha256:%064x" % (1000 + n), size=10 * n + 1,
                       digest=digest or "sha256:%064x" % (2000 + n), blob_size=n + 1,
                       media_type="application/vnd.docker.image.rootfs.diff.tar.gzip")


def sha_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def hash_of(*specs, compression="gzip", level=None):
    return filters_hash([build_filter(s) for s in specs], compression, level)


def assert_keyed_by_every_part(cache):
    """A cache holding result(1) under (IN, "h", "gzip", default level): every part of
    the key counts, and a store under the same key replaces the entry.  Both backends
    (SQLite here, Redis in tests/functional/test_redis_layer_cache.py) keep it."""
    assert cache.lookup(IN, "h", "gzip", 2) is None
    assert cache.lookup(IN, "h", "zstd", None) is None
    assert cache.lookup(IN, "other", "gzip", None) is None
    assert cache.lookup("sha256:" + "2" * 64, "h", "gzip", None) is None
    cache.store(IN, "h", "gzip", None, result(2), "127.0.0.1:5000/b")     # replaced
    assert cache.lookup(IN, "h", "gzip", None).digest == result(2).digest


def test_filters_hash_names_filters_codec_and_level():
    base = hash_of("normalize-timestamps")
    assert re.fullmatch(r"[0-9a-f]{16}", base), base     # 16 lowercase hex digits
    assert base == hash_of("normalize-timestamps")
    assert base == hash_of("normalize-timestamps", level=1)       # gzip's default level
    others = {hash_of(), hash_of("normalize-timestamps", compression="zstd"),
              hash_of("normalize-timestamps", level=2), hash_of("normalize-timestamps:ts=5"),
              hash_of("normalize-timestamps", level=9),
              hash_of("exclude:pattern=tmp/*"),
              hash_of("exclude:pattern=tmp/*", "normalize-timestamps"),
              hash_of("normalize-timestamps", "exclude:pattern=tmp/*")}
    assert base not in others and len(others) == 8    # order of filters matters too
    # observers do not change the bytes, so they do not change the hash
    assert hash_of("normalize-timestamps", "search:pattern=*.py") == base
    assert level_of("zstd", None) == 3 and level_of("gzip", "2") == 2


def test_store_and_lookup_roundtrip(tmp_path):
    path = tmp_path / "cache.db"
    with open_cache(str(path)) as cache:
        assert cache.lookup(IN, "h", "gzip", None) is None
        cache.store(IN, "h", "gzip", None, result(1), "127.0.0.1:5000/a")
    with open_cache(str(path)) as cache:                   # persisted
        entry = cache.lookup(IN, "h", "gzip", 1)
        assert (entry.digest, entry.size, entry.diff_id, entry.diff_size, entry.origin) == \
            (result(1).digest, 2, result(1).diff_id, 11, "127.0.0.1:5000/a")
        assert entry.media_type.endswith("tar.gzip") and entry.created > 0
        assert_keyed_by_every_part(cache)
        assert len(cache.entries()) == 1
    conn = sqlite3.connect(str(path))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


@pytest.mark.parametrize("content, reason", [
    (json.dumps({"version": 1, "layers": {"ab" * 32: {
        "compressed_digest": "sha256:" + "cd" * 32, "compressed_size": 3,
        "media_type": "x", "filters_hash": "none", "timestamp": "2024-01-01T00:00:00Z"}}},
        indent=2).encode(), "0.4.17 JSON cache"),
    (os.urandom(3000), "not an SQLite database"),
    (b"{not json", "not an SQLite database"),
    (b"SQLite format 3\x00" + b"\xff" * 5000, "not a database"),
], ids=["json-0.4.17", "garbage", "bad-json", "bad-sqlite"])
def test_foreign_files_warn_and_are_left_alone(tmp_path, caplog, content, reason):
    path = tmp_path / "cache"
    path.write_bytes(content)
    before = sha_file(path)
    with caplog.at_level(logging.WARNING, logger="occystrap"):
        assert open_cache(str(path)) is None
    assert reason in caplog.text and "running without a layer cache" in caplog.text
    assert sha_file(path) == before
    assert sorted(os.listdir(tmp_path)) == ["cache"]


def test_other_sqlite_databases_are_not_taken_over(tmp_path, caplog):
    path = tmp_path / "app.db"
    conn = sqlite3.connect(str(path))
    conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.commit()
    conn.close()
    with caplog.at_level(logging.WARNING, logger="occystrap"):
        assert open_cache(str(path)) is None
    assert "SQLite database of something else" in caplog.text
    newer = tmp_path / "newer.db"
    open_cache(str(newer)).close()
    conn = sqlite3.connect(str(newer))
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    assert open_cache(str(newer)) is None
    assert "newer occystrap (schema 99)" in caplog.text


def test_damaged_pages_found_later_disable_the_cache(tmp_path, caplog):
    path = tmp_path / "cache.db"
    with open_cache(str(path)) as cache:
        for n in range(400):            # several pages of rows
            cache.store("sha256:%064x" % n, "h", "gzip", None, result(n), "r/x")
    size = os.path.getsize(path)
    assert size > 3 * 4096
    with open(path, "r+b") as f:        # wreck everything after the first page
        f.seek(4096)
        f.write(b"\xa5" * (size - 4096))
    cache = open_cache(str(path))
    with caplog.at_level(logging.WARNING, logger="occystrap"):
        if cache is not None:           # the header page survived: fails on first use
            assert cache.lookup("sha256:%064x" % 7, "h", "gzip", None) is None
            cache.store(IN, "h", "gzip", None, result(1), "r/x")
            cache.close()
    assert "Layer cache" in caplog.text and caplog.text.count("WARNING") == 1


def test_unusable_paths_warn(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="occystrap"):
        assert open_cache(str(tmp_path / "missing-dir" / "cache.db")) is None
        assert open_cache(str(tmp_path)) is None                # a directory
    assert caplog.text.count("running without a layer cache") == 2
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with open_cache(str(empty)) as cache:                       # an empty file is new
        cache.store(IN, "h", "gzip", None, result(1), "r/x")
        assert cache.lookup(IN, "h", "gzip", None) is not None


def test_threads_share_one_cache_and_processes_share_the_file(tmp_path):
    path = str(tmp_path / "cache.db")
    first, second = open_cache(path), open_cache(path)         # two connections, like
    try:                                                        # two processes

        def work(n):
            cache = first if n % 2 else second
            cache.store("sha256:%064x" % n, "h", "gzip", None, result(n), "r/x")
            return cache.lookup("sha256:%064x" % (n - n % 2), "h", "gzip", None)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(work, range(200)))
        for n in range(200):
            entry = first.lookup("sha256:%064x" % n, "h", "gzip", None)
            assert entry.digest == result(n).digest             # each input, its own blob
    finally:
        first.close()
        second.close()
