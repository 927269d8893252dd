"""The Celery side: the app both ends build from one broker URL, and the task a worker
runs, one image per job (mirror.run.run_job, which is idempotent: an image already at
the destination is found unchanged and nothing moves).

Jobs are long and must survive a lost worker, hence the settings: a worker reserves
one job at a time (prefetch 1) and acknowledges it only when it ends (acks_late); a
pool process that dies mid-job sends it back to the queue (reject_on_worker_lost); a
worker killed whole leaves it unacknowledged, and Redis hands it to another worker
once the visibility timeout passes.  A job may not run longer than that timeout (the
hard time limit sits below it), or a live worker's job would be handed out twice.
"""
import dataclasses
import logging

from ..errors import OccystrapError
from ..filters import build_filter
from ..mirror.model import Entry, Job
from . import KEY_PREFIX, RUN_TTL, need

LOG = logging.getLogger(__name__)

TASK = "occystrap.copy_image"
QUEUE = "occystrap"
MESSAGE_VERSION = 1                 # a worker refuses a job of another shape
VISIBILITY_TIMEOUT = 6 * 3600       # seconds; the longest job must take less
MIN_VISIBILITY_TIMEOUT = 10         # below this the time limit (90%) means nothing
RESTORE_INTERVAL = 5                # seconds between a worker's sweeps for lost jobs
RESULT_TTL = 7 * 86400              # seconds a job's record stays readable

# What the sender decides about every copy, and sends with each job (--insecure is
# honoured from either side).  The rest (credentials, --ca-file, --retries,
# --temp-dir) is the worker's own and never travels.
JOB_OPTIONS = ("platform", "os_", "architecture", "variant", "referrers", "compression",
               "compression_level", "parallel", "verify", "verify_full", "rate_limit",
               "layer_cache", "insecure")
# The entry's fields a job needs (tags and semver only chose the images, on the sender).
ENTRY_FIELDS = tuple(f.name for f in dataclasses.fields(Entry)
                     if f.name not in ("tags", "semver"))


class MessageError(OccystrapError):
    """A job message this worker cannot read (another version, or not a job)."""


def make_app(broker, visibility_timeout=VISIBILITY_TIMEOUT):
    """The Celery app on broker (Redis, which also keeps the results)."""
    celery = need("celery")
    need("redis")
    app = celery.Celery("occystrap", broker=broker, backend=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_default_queue=QUEUE, task_acks_late=True, task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1, task_track_started=True,
        task_time_limit=max(1, int(visibility_timeout * 0.9)), result_expires=RESULT_TTL,
        # a kombu without the two sweep settings ignores them and sweeps on its own schedule
        broker_transport_options={"visibility_timeout": visibility_timeout,
                                  "unacked_restore_interval": RESTORE_INTERVAL,
                                  "unacked_restore_throttle": 1},
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        worker_redirect_stdouts=False)
    app.task(name=TASK, bind=True)(_copy_image)
    return app


def job_message(job, options, run_id, dry_run=False, keep_going=False):
    """The JSON a job travels as.  Filters go as portable specs: a default the
    sender's environment gives ($SOURCE_DATE_EPOCH) is written out, so every worker
    makes the same bytes as a local sync would."""
    entry = {name: getattr(job.entry, name) for name in ENTRY_FIELDS}
    entry["filters"] = [build_filter(text).portable_spec for text in job.entry.filters]
    return {"v": MESSAGE_VERSION, "run": run_id, "source": job.source,
            "destination": job.destination, "dry_run": bool(dry_run),
            "keep_going": bool(keep_going), "entry": entry,
            "options": {k: options.get(k) for k in JOB_OPTIONS if options.get(k) is not None}}


def job_of(message):
    """(run id, Job) of a message; MessageError when it is not one of ours."""
    try:
        if message.get("v") != MESSAGE_VERSION:
            raise MessageError("job message version %r, this worker reads %d (run the same "
                               "occystrap version on every side)"
                               % (message.get("v"), MESSAGE_VERSION))
        entry = dict(message["entry"])
        if set(entry) - set(ENTRY_FIELDS) or not isinstance(entry.get("filters"), list):
            raise MessageError("job message with unknown entry fields")
        entry["filters"] = tuple(entry["filters"])
        job = Job(message["source"], message["destination"], Entry(**entry))
        if not isinstance(message["run"], str) or not isinstance(message["options"], dict):
            raise MessageError("job message with a bad run or options")
        return message["run"], job
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise MessageError("not a job message (%s: %s)" % (type(exc).__name__, exc)) from None


def stop_key(run_id):
    """Set when no new image of the run may start (a failure without --keep-going, or
    a signal at the sender)."""
    return "%srun:%s:stop" % (KEY_PREFIX, run_id)


def stop(redis, run_id):
    """Set the stop key; Redis failing here only lets more images start."""
    try:
        redis.set(stop_key(run_id), 1, ex=RUN_TTL)
    except need("redis").RedisError as exc:
        LOG.debug("Could not stop run %s in Redis: %s", run_id, exc)


def _copy_image(task, message):
    """One image on this worker: its record as a dict, with the worker's name; None when
    the run was stopped before the job began."""
    from .worker import current
    return current().run(message, task.request.hostname)


def record_of(data):
    """An ImageRecord from a task's result."""
    from ..mirror.run import ImageRecord
    names = {f.name for f in dataclasses.fields(ImageRecord)}
    return ImageRecord(**{k: v for k, v in data.items() if k in names})

