"""occystrap/distributed/layercache.py against a real redis-server: the SQLite cache's
interface and Entry, its keys under occystrap:layer:, and a Redis that cannot be used
(down at open, killed mid-run, redis-py missing) costing one warning, never the run."""
import json
import logging
import sys

import pytest

from occystrap.cache import REWRITE_VERSION, open_cache
from occystrap.distributed import shown
from occystrap.distributed.layercache import RedisLayerCache
from tests import peers
from tests.unit.test_cache import IN, assert_keyed_by_every_part, result

pytestmark = pytest.mark.functional

MEDIA = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def warnings(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING]


def test_store_lookup_and_entries(redis_url, redis_server):
    with open_cache(redis_url) as cache:
        assert isinstance(cache, RedisLayerCache)
        assert cache.lookup(IN, "h", "gzip", None) is None
        assert cache.entries() == []
        cache.store(IN, "h", "gzip", None, result(1), "127.0.0.1:5000/a")
    with open_cache(redis_url) as cache:                   # another client sees it
        entry = cache.lookup(IN, "h", "gzip", 1)           # 1 is gzip's default level
        assert (entry.digest, entry.size, entry.media_type, entry.diff_id, entry.diff_size,
                entry.origin) == (result(1).digest, 2, MEDIA, result(1).diff_id, 11,
                                  "127.0.0.1:5000/a")
        assert entry.created > 0
        assert_keyed_by_every_part(cache)
        cache.store(IN, "h", "zstd", None, result(3), "127.0.0.1:5000/c")
        rows = cache.entries()
    assert [(r["compression"], r["level"], r["digest"]) for r in rows] == \
        [("gzip", 1, result(2).digest), ("zstd", 3, result(3).digest)]
    assert set(rows[0]) == {"input_diff_id", "filters_hash", "compression", "level", "digest",
                            "size", "media_type", "diff_id", "diff_size", "origin", "created"}
    key = "occystrap:layer:v1:r%d:%s:h:gzip:1" % (REWRITE_VERSION, IN)
    assert sorted(redis_server.cli("KEYS", "*").split()) == \
        sorted([key, "occystrap:layer:v1:r%d:%s:h:zstd:3" % (REWRITE_VERSION, IN)])
    assert json.loads(redis_server.cli("GET", key))["origin"] == "127.0.0.1:5000/b"


def test_entries_scan_past_one_batch_and_skip_foreign_values(redis_url, redis_server):
    with open_cache(redis_url) as cache:
        for n in range(1200):
            cache.store("sha256:%064x" % n, "h", "gzip", None, result(n), "r/x")
        redis_server.cli("SET", "occystrap:layer:v1:r%d:junk" % REWRITE_VERSION, "not json")
        redis_server.cli("SET", "other:app:key", "1")
        assert len(cache.entries()) == 1200
        assert cache.lookup("sha256:%064x" % 7, "h", "gzip", None).digest == result(7).digest


def test_a_value_that_is_not_an_entry_is_a_miss(redis_url, redis_server, caplog):
    redis_server.cli("SET", "occystrap:layer:v1:r%d:%s:h:gzip:1" % (REWRITE_VERSION, IN),
                     '{"digest": "sha256:x"}')
    with caplog.at_level(logging.WARNING, logger="occystrap"), open_cache(redis_url) as cache:
        assert cache.lookup(IN, "h", "gzip", None) is None
        cache.store(IN, "h", "gzip", None, result(1), "r/x")           # and is replaced
        assert cache.lookup(IN, "h", "gzip", None).digest == result(1).digest
    assert warnings(caplog) == []


def test_redis_killed_mid_run_disables_the_cache_with_one_warning(caplog):
    server = peers.RedisServer().start()
    try:
        cache = open_cache(server.url)
        cache.store(IN, "h", "gzip", None, result(1), "r/x")
        assert cache.lookup(IN, "h", "gzip", None) is not None
        server.stop()
        with caplog.at_level(logging.WARNING, logger="occystrap"):
            assert cache.lookup(IN, "h", "gzip", None) is None
            cache.store(IN, "h", "gzip", None, result(2), "r/x")
            assert cache.lookup(IN, "h", "gzip", None) is None
            assert cache.entries() == []
        cache.close()
    finally:
        server.stop()
    found = warnings(caplog)
    assert len(found) == 1, caplog.text
    assert "failed" in found[0].getMessage() and "continuing without it" in caplog.text


def test_redis_down_at_open_warns_once_and_gives_no_cache(caplog):
    url = "redis://127.0.0.1:%d/0" % peers.free_port()       # nothing listens there
    with caplog.at_level(logging.WARNING, logger="occystrap"):
        assert open_cache(url) is None
        assert open_cache("rediss://127.0.0.1:%d/0" % peers.free_port()) is None
        assert open_cache("redis://127.0.0.1:6379/notanumber") is None
    assert len(warnings(caplog)) == 3
    assert caplog.text.count("running without a layer cache") == 3


def test_without_redis_py_the_warning_says_what_to_install(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "redis", None)          # import redis fails
    with caplog.at_level(logging.WARNING, logger="occystrap"):
        assert open_cache("redis://127.0.0.1:6379/0") is None
    assert len(warnings(caplog)) == 1
    assert "pip install 'occystrap[distributed]'" in caplog.text
    assert "running without a layer cache" in caplog.text


def test_passwords_are_not_shown(caplog):
    assert shown("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert shown("rediss://user:s3cret@host/1") == "rediss://user:***@host/1"
    assert shown("redis://host:6379/0") == "redis://host:6379/0"
    with caplog.at_level(logging.WARNING, logger="occystrap"):
        assert open_cache("redis://:s3cret@127.0.0.1:%d/0" % peers.free_port()) is None
    assert "s3cret" not in caplog.text and ":***@" in caplog.text
