"""One worker process's side of a job: its own options (credentials, TLS trust,
retries) under the job's, the run's shared state in Redis, and mirror.run.run_job.

The state is made in the worker's main process before Celery forks its pool, so each
pool process inherits it (redis-py opens new connections after a fork by itself).
"""
import logging

from ..cache import open_cache
from ..mirror.run import ImageRecord, run_job
from ..transports.registry.client import ClientPool
from . import need, reachable
from .blobs import RedisShared
from .ratelimit import RedisRateLimiter
from .tasks import JOB_OPTIONS, MessageError, job_of, stop, stop_key

LOG = logging.getLogger(__name__)

_CURRENT = None


def current():
    """The WorkerState this process was started with."""
    if _CURRENT is None:
        raise RuntimeError("no occystrap worker state in this process")
    return _CURRENT


class WorkerState:
    """What a worker keeps from its command line: options and the Redis connection."""

    RUNS_KEPT = 2           # runs whose clients a pool process keeps open

    def __init__(self, broker, options):
        self.options = dict(options)
        self.redis = reachable(broker)
        self._runs = {}         # run id -> (ClientPool, RedisShared) its jobs share

    def run_state(self, run_id, rate):
        """The run's ClientPool (with the run's Redis rate limit: its jobs share
        connections and tokens) and RedisShared in this process; the oldest run's pool
        is closed when a third run comes."""
        state = self._runs.get(run_id)
        if state is None:
            while len(self._runs) >= self.RUNS_KEPT:
                self._runs.pop(next(iter(self._runs)))[0].close()
            limiter = RedisRateLimiter(self.redis, float(rate), run_id) if rate else None
            state = self._runs[run_id] = (ClientPool(limiter=limiter),
                                          RedisShared(self.redis, run_id))
        return state

    def install(self):
        global _CURRENT
        _CURRENT = self
        return self

    def options_for(self, message):
        """The job's copy options (JOB_OPTIONS only: a message cannot set the worker's
        credentials or trust) over the worker's own; --insecure from either."""
        options = dict(self.options)
        sent = message["options"]
        options.update((k, v) for k, v in sent.items() if k in JOB_OPTIONS)
        options["insecure"] = bool(self.options.get("insecure") or sent.get("insecure"))
        return options

    def run(self, message, hostname):
        """The job's record as a dict (with this worker's name), or None when its run
        was stopped before it began.  A message that is not a job becomes a failed
        record, so the sender is told, and the job is not retried."""
        try:
            run_id, job = job_of(message)
        except MessageError as exc:
            LOG.error("Refused a job: %s", exc)
            if isinstance(message, dict) and isinstance(message.get("run"), str) and \
                    not message.get("keep_going"):
                stop(self.redis, message["run"])
            source = message.get("source") if isinstance(message, dict) else None
            destination = message.get("destination") if isinstance(message, dict) else None
            return dict(ImageRecord(str(source), str(destination), error=str(exc)).as_dict(),
                        worker=hostname)
        if self._stopped(run_id):
            return None
        options = self.options_for(message)
        options["clients"], shared = self.run_state(run_id, options.get("rate_limit"))
        cache = open_cache(options.get("layer_cache"))
        LOG.info("Start %s -> %s (run %s)", job.source, job.destination, run_id)
        try:
            record = run_job(job, options, cache, message.get("dry_run", False), shared)
        finally:
            if cache is not None:
                cache.close()
        record.worker = hostname
        if record.status == "failed" and not message.get("keep_going"):
            stop(self.redis, run_id)
        LOG.info("%s %s -> %s%s", record.status, job.source, job.destination,
                 ": %s" % record.error if record.error else "")
        return record.as_dict()

    def _stopped(self, run_id):
        """Whether the run's stop key is set; Redis failing here lets the image start."""
        try:
            return bool(self.redis.exists(stop_key(run_id)))
        except need("redis").RedisError as exc:
            LOG.warning("Could not read run %s's stop key: %s", run_id, exc)
            return False
