"""The state workers share in Redis, against a real redis-server and real processes:
the per-blob lease (distributed/blobs.py) and the run's rate limit
(distributed/ratelimit.py)."""
import logging
import multiprocessing
import os
import signal
import time

import pytest

from occystrap.distributed import redis_client
from occystrap.distributed.blobs import RedisShared, run_keys
from occystrap.distributed.ratelimit import RedisRateLimiter
from occystrap.transports.base import LayerResult
from tests import peers

pytestmark = pytest.mark.functional

CONTEXT = multiprocessing.get_context("spawn")      # fresh processes, as workers are


def _make_once(url, run, marks, lease, hold, queue):
    """One process asking for the same blob: make() appends to marks and takes hold s."""
    shared = RedisShared(redis_client(url), run, lease=lease, poll=0.05)

    def make():
        with open(marks, "a") as f:
            f.write("%d\n" % os.getpid())
        time.sleep(hold)
        return LayerResult(index=0, diff_id="sha256:" + "d" * 64, size=10,
                           digest="sha256:" + "b" * 64, blob_size=5, media_type="m")

    result, shared_flag = shared.once((("registry", "h", "r"), None, (), "sha256:" + "a" * 64),
                                      make)
    queue.put((result.digest, result.size, shared_flag))


def test_one_process_makes_a_blob_the_others_reuse(redis_url, tmp_path):
    marks = tmp_path / "marks"
    queue = CONTEXT.Queue()
    procs = [CONTEXT.Process(target=_make_once, args=(redis_url, "run1", str(marks), 5.0,
                                                      1.0, queue)) for _ in range(3)]
    for proc in procs:
        proc.start()
    answers = sorted(queue.get(timeout=60) for _ in procs)
    for proc in procs:
        proc.join(30)
    assert len(marks.read_text().split()) == 1           # made once
    assert [shared for _d, _s, shared in answers] == [False, True, True]
    assert {(d, s) for d, s, _ in answers} == {("sha256:" + "b" * 64, 10)}


def test_a_killed_maker_s_lease_passes_to_a_waiter(redis_url, tmp_path):
    marks = tmp_path / "marks"
    queue = CONTEXT.Queue()
    maker = CONTEXT.Process(target=_make_once, args=(redis_url, "run2", str(marks), 1.0,
                                                     60.0, queue))
    maker.start()
    deadline = time.monotonic() + 30
    while not marks.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(maker.pid, signal.SIGKILL)                   # dies holding the lease
    maker.join()
    started = time.monotonic()
    waiter = CONTEXT.Process(target=_make_once, args=(redis_url, "run2", str(marks), 1.0,
                                                      0.1, queue))
    waiter.start()
    digest, _size, shared = queue.get(timeout=30)
    waiter.join(30)
    assert not shared and digest == "sha256:" + "b" * 64
    assert len(marks.read_text().split()) == 2           # made again, by the waiter
    assert time.monotonic() - started < 10               # within a lease or so


def test_another_run_trusts_nothing_a_former_run_recorded(redis_url, tmp_path):
    marks = tmp_path / "marks"
    queue = CONTEXT.Queue()
    for run in ("run3", "run4"):
        proc = CONTEXT.Process(target=_make_once, args=(redis_url, run, str(marks), 5.0,
                                                        0.0, queue))
        proc.start()
        assert queue.get(timeout=60)[2] is False
        proc.join(30)
    assert len(marks.read_text().split()) == 2
    client = redis_client(redis_url)
    assert list(client.scan_iter(match=run_keys("run3")))   # the record, not the lock
    assert all(key.endswith(b":done") for key in client.scan_iter(match=run_keys("run3")))


def _draw(url, rate, count, queue):
    limiter = RedisRateLimiter(redis_client(url), rate, "shared-run")
    for _ in range(count):
        limiter.wait()
        queue.put(time.time())


def test_the_rate_limit_holds_across_processes(redis_url):
    rate, each = 20.0, 10
    queue = CONTEXT.Queue()
    procs = [CONTEXT.Process(target=_draw, args=(redis_url, rate, each, queue))
             for _ in range(3)]
    for proc in procs:
        proc.start()
    stamps = sorted(queue.get(timeout=60) for _ in range(3 * each))
    for proc in procs:
        proc.join(30)
    # 30 requests from three processes at 20/s: at least 29 intervals of 50 ms
    assert stamps[-1] - stamps[0] >= (3 * each - 1) / rate * 0.95


def _layout_once(url, run, marks, queue):
    shared = RedisShared(redis_client(url), run, lease=5.0, poll=0.05)

    def make():
        with open(marks, "a") as f:
            f.write("%d\n" % os.getpid())
        return True

    queue.put(shared.once((("layout", "/srv/out"), None, (), "sha256:" + "a" * 64), make))


def test_blobs_bound_for_a_layout_are_not_shared_across_processes(redis_url, tmp_path):
    """The same layout path names another disk on another machine: each makes its own."""
    marks = tmp_path / "marks"
    queue = CONTEXT.Queue()
    for _ in range(2):
        proc = CONTEXT.Process(target=_layout_once, args=(redis_url, "run5", str(marks),
                                                           queue))
        proc.start()
        assert queue.get(timeout=60) == (True, False)
        proc.join(30)
    assert len(marks.read_text().split()) == 2
    assert not list(redis_client(redis_url).scan_iter(match=run_keys("run5")))


def test_redis_failing_under_the_lock_and_the_rate_limit_costs_a_warning(caplog):
    dead = redis_client("redis://127.0.0.1:%d/0" % peers.free_port())
    shared = RedisShared(dead, "run6")
    made = []
    with caplog.at_level(logging.WARNING):
        assert shared.once((("registry", "h", "r"), None, (), "sha256:" + "a" * 64),
                           lambda: made.append(1) or "made") == ("made", False)
        assert shared.once((("registry", "h", "r"), None, (), "sha256:" + "b" * 64),
                           lambda: made.append(1) or "again") == ("again", False)
        limiter = RedisRateLimiter(dead, 50.0, "run6")
        started = time.monotonic()
        for _ in range(6):
            limiter.wait()                      # this process's own bucket now
        assert time.monotonic() - started >= 5 / 50.0 * 0.9
    assert made == [1, 1]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "blob lock" in w]) == 1, warnings
    assert len([w for w in warnings if "Rate limit" in w]) == 1, warnings


def test_the_sender_notices_no_worker_and_a_broker_that_lost_the_run(redis_url, caplog):
    from occystrap.distributed.submit import _Watch, run_key
    from occystrap.distributed.tasks import QUEUE
    from occystrap.errors import OutputError
    client = redis_client(redis_url)
    client.set(run_key("run7"), 2, ex=60)
    client.rpush(QUEUE, "job-1", "job-2")           # two jobs, nobody took them
    watch = _Watch(client, "run7", redis_url, 2)
    watch._began -= watch.NOTICE_AFTER + 1
    watch._last -= watch.EVERY + 1
    with caplog.at_level(logging.WARNING):
        watch.look()
    assert "Waiting for 2 jobs: no worker has taken one yet" in caplog.text
    assert client.ttl(run_key("run7")) > 60          # kept alive while it waits
    client.delete(run_key("run7"))                   # Redis restarted empty
    watch._last -= watch.EVERY + 1
    with pytest.raises(OutputError, match="lost this run's jobs"):
        watch.look()
