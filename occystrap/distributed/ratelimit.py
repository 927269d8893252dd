"""`--rate-limit` across workers: the same one-token bucket as the in-process
RateLimiter (registry/client.py), with its next free slot kept in Redis so every
worker of a run draws from it.  A Lua script reserves the slot atomically on Redis's
own clock, so the workers' clocks need not agree.  Redis failing under it falls back
to this process's own bucket (one warning), so a copy never fails for its limiter."""
import logging
import time

from ..transports.registry.client import RateLimiter
from . import KEY_PREFIX, need

LOG = logging.getLogger(__name__)

# KEYS[1]: the slot; ARGV[1]: the interval, ARGV[2]: the key's expiry (both in us).
# Returns how long the caller waits for its slot, in microseconds.
RESERVE = """local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
redis.call('SET', KEYS[1], slot + tonumber(ARGV[1]), 'PX', math.ceil(tonumber(ARGV[2]) / 1000))
return slot - now"""


class RedisRateLimiter:
    """At most rate requests per second over every process that uses name."""

    def __init__(self, client, rate, name):
        self._local = RateLimiter(rate)         # its range check, and the fallback
        self.interval = self._local.interval
        self.key = "%srate:%s" % (KEY_PREFIX, name)
        self._reserve = client.register_script(RESERVE)
        self._args = [int(self.interval * 1e6), int((self.interval + 60) * 1e6)]
        self._error = need("redis").RedisError
        self._broken = False

    def wait(self):
        if not self._broken:
            try:
                delay = self._reserve(keys=[self.key], args=self._args)
            except self._error as exc:
                self._broken = True
                LOG.warning("Rate limit in Redis failed (%s); limiting this worker alone", exc)
            else:
                if delay > 0:
                    time.sleep(delay / 1e6)
                return
        self._local.wait()
