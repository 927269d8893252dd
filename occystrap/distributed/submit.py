"""`occystrap sync SPEC --broker URL`: resolve the set here, send one job per image,
and wait for the workers' records (or, with --no-wait, return the job ids).

The report is a local sync's (mirror.run.SyncReport), each record naming its worker.
The first failed image stops the jobs not yet begun unless keep_going: the worker
whose image failed sets a key in Redis that every worker reads before it starts a
job (this end sets it too, on a signal or a lost broker).  The jobs in flight finish
either way: a job is one image, tagged only when complete.
"""
import dataclasses
import logging
import time
import uuid

from ..errors import OutputError
from ..mirror.run import ImageRecord, SyncReport, resolve_jobs
from ..transports.registry.client import ClientPool
from . import KEY_PREFIX, RUN_TTL, need, reachable, shown
from .blobs import run_keys
from .tasks import QUEUE, TASK, job_message, make_app, record_of, stop

LOG = logging.getLogger(__name__)

POLL = 0.1              # seconds between looks at the results (one MGET of the pending)


@dataclasses.dataclass
class Sent:
    """A run's jobs as sent: [(job, task id)] in job order, the entries that could not
    be resolved (ImageRecords), how many jobs those kept from being sent, and the app
    and Redis client the sender goes on with.  Only task ids are kept: an AsyncResult
    left alive at exit talks to Redis from its __del__ (a traceback when it is gone)."""
    app: object
    redis: object
    run_id: str
    jobs: list
    unresolved: list
    unsent: int = 0


def send(spec, options, broker, keep_going=False, dry_run=False):
    """Resolve spec here and send one job per image: a Sent.  An unresolved entry
    without keep_going sends nothing, as a local sync then starts nothing."""
    redis = reachable(broker)
    listing = dict(options, clients=ClientPool(options.get("rate_limit")))
    try:
        jobs, unresolved = resolve_jobs(spec, listing, keep_going)
    finally:
        listing["clients"].close()
    app = make_app(broker)
    run_id = uuid.uuid4().hex
    if unresolved and not keep_going:
        return Sent(app, redis, run_id, [], unresolved, len(jobs))
    messages = [job_message(job, options, run_id, dry_run, keep_going) for job in jobs]
    sent = []
    try:
        redis.set(run_key(run_id), len(jobs), ex=RUN_TTL)
        for job, message in zip(jobs, messages):
            sent.append((job, app.send_task(TASK, args=[message], queue=QUEUE).id))
    except BaseException as exc:
        stop(redis, run_id)         # a signal mid-way: the jobs already sent start nothing
        if isinstance(exc, _broker_errors()):
            raise OutputError("lost the broker %s: %s" % (shown(broker), exc)) from None
        raise
    return Sent(app, redis, run_id, sent, unresolved)


def _broker_errors():
    """What losing Redis raises: redis-py's errors, and kombu's when it publishes."""
    import kombu.exceptions
    return need("redis").RedisError, kombu.exceptions.OperationalError


def run_key(run_id):
    """Set while a run's jobs are out: gone, it says Redis lost them (a restart)."""
    return "%srun:%s:sent" % (KEY_PREFIX, run_id)


def sync_with_broker(spec, options, broker, keep_going=False, dry_run=False,
                     on_image=None, on_jobs=None):
    """Like mirror.run.sync, with the images copied by `occystrap worker`s."""
    started = time.monotonic()
    sent = send(spec, options, broker, keep_going, dry_run)
    redis, run_id = sent.redis, sent.run_id
    if on_jobs is not None:
        on_jobs(len(sent.jobs) + len(sent.unresolved) + sent.unsent)
    records = {}
    by_id = {task_id: (position, job) for position, (job, task_id) in enumerate(sent.jobs)}
    watch = _Watch(redis, run_id, broker, len(by_id))
    try:
        for task_id, meta in sent.app.backend.get_many(list(by_id), interval=POLL,
                                                       on_interval=watch.look):
            position, job = by_id.pop(task_id)
            watch.pending = len(by_id)
            record = _record(job, meta)
            if record is None:          # stopped before it began
                continue
            records[position] = record
            if record.status == "failed" and not keep_going:
                stop(redis, run_id)     # also for what no worker stopped (a time limit)
            if on_image is not None:
                on_image(record)
    except _broker_errors() as exc:
        stop(redis, run_id)
        raise OutputError("lost the broker %s: %s" % (shown(broker), exc)) from None
    except BaseException:
        stop(redis, run_id)
        raise
    _clean_up(redis, run_id)        # every job ended: nobody holds its leases any more
    for record in sent.unresolved:
        if on_image is not None:
            on_image(record)
    done = sent.unresolved + [records[p] for p in sorted(records)]
    return SyncReport(done, time.monotonic() - started,
                      sent.unsent + len(sent.jobs) - len(records))


class _Watch:
    """Looks now and then, while the sender waits: that Redis still holds the run (a
    restart without persistence loses queue and results, and nothing would ever come),
    and whether any worker is taking the jobs (a notice, since jobs wait for one)."""

    EVERY = 5.0                 # seconds between looks
    NOTICE_AFTER = 30.0         # seconds of no job taken before the notice

    def __init__(self, redis, run_id, broker, pending):
        self.redis = redis
        self.run_id = run_id
        self.broker = broker
        self.pending = pending
        self._began = self._last = time.monotonic()
        self._told = False

    def look(self):
        now = time.monotonic()
        if now - self._last < self.EVERY:
            return
        self._last = now
        if not self.redis.expire(run_key(self.run_id), RUN_TTL):   # kept alive while we wait
            raise OutputError("the broker %s lost this run's jobs (did Redis restart "
                              "without persistence?); run the sync again"
                              % shown(self.broker))
        queued = self.redis.llen(QUEUE)
        if not self._told and now - self._began > self.NOTICE_AFTER and \
                self.pending and queued >= self.pending:
            self._told = True
            LOG.warning("Waiting for %d jobs: no worker has taken one yet (is an "
                        "`occystrap worker --broker %s` running?)", queued,
                        shown(self.broker))


def _clean_up(redis, run_id):
    """Delete the run's leases, records and keys (best effort: they expire anyway)."""
    try:
        for key in redis.scan_iter(match=run_keys(run_id), count=1000):
            redis.delete(key)
        redis.delete(run_key(run_id))
    except need("redis").RedisError as exc:
        LOG.debug("Clean-up of run %s failed: %s", run_id, exc)


def _record(job, meta):
    """The ImageRecord a finished job left (None: it did not begin), or a failed one
    when the task itself failed (a time limit, a worker's own error)."""
    if meta["status"] == "SUCCESS":
        return None if meta["result"] is None else record_of(meta["result"])
    error = meta.get("result")
    if isinstance(error, BaseException):
        error = "%s: %s" % (type(error).__name__, error)
    return ImageRecord(job.source, job.destination,
                       error="job %s: %s" % (meta["status"].lower(), error))
