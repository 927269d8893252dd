"""The per-blob upload lock across workers: a blob that several images of one run
share is made (rewritten, uploaded) by one worker while the others wait, then reuse
what it made.

It extends api.Shared, the same rule inside one process: threads of one worker share
futures first, and only the thread that would make a blob asks Redis.  There, the
maker holds a lease (a key with a short expiry it renews while it works), so a worker
killed with `kill -9` stops renewing it and a waiter takes the blob over within one
lease.  What the maker made is recorded under the run's id only: a later run trusts
nothing a former run recorded, since the destination may have changed since (the
layer cache, which checks the destination first, is what carries across runs).

Only blobs bound for a registry are shared this way: a registry is one place every
worker writes to, while a layout or a directory path names a different disk on each
machine (those blobs are shared within the process only).  The lock only saves work,
so Redis failing under it costs a warning, and the blob is made here.
"""
import dataclasses
import hashlib
import json
import logging
import threading
import time
import uuid

from ..api import Shared
from ..transports.base import LayerResult
from . import KEY_PREFIX, RUN_TTL, need

LOG = logging.getLogger(__name__)

LEASE = 15.0            # seconds a maker's claim lasts without being renewed
POLL = 0.2              # seconds between a waiter's looks

# Give the lease up only if it is still ours (another worker may hold it by now).
RELEASE = """if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1]) end return 0"""
RENEW = """if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"""


def encode(result):
    """A made blob's result as JSON: a LayerResult without its source, or a plain value
    (the byte-exact copier's `reused` flag)."""
    if isinstance(result, LayerResult):
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
                  if f.name != "source"}
        return json.dumps({"layer": fields})
    return json.dumps({"value": result})


def decode(raw):
    data = json.loads(raw)
    return LayerResult(**data["layer"]) if "layer" in data else data["value"]


def run_keys(run_id):
    """The pattern of every key one run's locks and records use (for clean-up)."""
    return "%sonce:%s:*" % (KEY_PREFIX, run_id)


class RedisShared(Shared):
    """api.Shared across processes: (result, shared) as Shared.once gives, shared
    also when another worker made it."""

    def __init__(self, client, run_id, lease=LEASE, poll=POLL):
        super().__init__()
        self.client = client
        self.run_id = run_id
        self.lease = lease
        self.poll = poll
        self._release = client.register_script(RELEASE)
        self._renew = client.register_script(RENEW)
        self._broken = False

    def once(self, key, make):
        if not _in_registry(key):
            return super().once(key, make)
        (result, elsewhere), shared = super().once(key, lambda: self._guarded(key, make))
        return result, shared or elsewhere

    def _guarded(self, key, make):
        """_across, or make() here when Redis fails under it: one warning, and no more
        tries for this run in this process (each could wait out a connect timeout)."""
        if self._broken:
            return make(), False
        error = need("redis").RedisError
        made = []

        def counted():
            made.append(True)
            return make()
        try:
            return self._across(key, counted)
        except error as exc:
            if made:                # make() itself ran: only the record was lost
                raise
            self._broken = True
            LOG.warning("Shared blob lock in Redis failed (%s); this worker makes the "
                        "run's shared blobs itself", exc)
            return make(), False

    def _names(self, key):
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:32]
        base = "%sonce:%s:%s" % (KEY_PREFIX, self.run_id, digest)
        return base + ":lock", base + ":done"

    def _across(self, key, make):
        """(result, made elsewhere): the recorded result once some worker made it, or
        make() here under the lease when nobody holds it."""
        lock, done = self._names(key)
        token = uuid.uuid4().hex
        while True:
            raw = self.client.get(done)
            if raw is not None:
                return decode(raw), True
            if self.client.set(lock, token, nx=True, px=int(self.lease * 1000)):
                try:
                    raw = self.client.get(done)     # finished just before we claimed it
                    if raw is not None:
                        return decode(raw), True
                    with _Renewing(self._renew, lock, token, self.lease):
                        result = make()
                    # lost, the record only costs waiters a second make, after the lease
                    _quietly(self.client.set, name=done, value=encode(result), ex=RUN_TTL)
                    return result, False
                finally:
                    _quietly(self._release, keys=[lock], args=[token])
            time.sleep(self.poll)


def _in_registry(key):
    """Whether a Run.once key names a blob bound for a registry (its scope first)."""
    scope = key[0] if isinstance(key, tuple) and key else None
    return isinstance(scope, tuple) and scope[:1] == ("registry",)


def _quietly(call, **kwargs):
    """A clean-up call that must not hide the error being raised (the lease expires
    by itself)."""
    try:
        call(**kwargs)
    except Exception as exc:
        LOG.debug("Redis clean-up failed: %s", exc)


class _Renewing:
    """Renew a lease every third of its length while the block runs."""

    def __init__(self, renew, lock, token, lease):
        self._renew = renew
        self._args = (lock, token, int(lease * 1000))
        self._every = lease / 3
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="occystrap-lease",
                                        daemon=True)

    def _loop(self):
        lock, token, millis = self._args
        while not self._stop.wait(self._every):
            try:
                self._renew(keys=[lock], args=[token, millis])
            except Exception:       # Redis away for a moment: the next renewal may work
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
