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

from ..mirror.model import Entry, Job
from . import KEY_PREFIX, need

LOG = logging.getLogger(__name__)

TASK = "occystrap.copy_image"
QUEUE = "occystrap"
VISIBILITY_TIMEOUT = 6 * 3600       # seconds; the longest job must take less
RESTORE_INTERVAL = 5                # seconds between a worker's sweeps for lost jobs
RESULT_TTL = 7 * 86400              # seconds a job's record stays readable

# What the sender decides about every copy; the rest (credentials, --insecure,
# --ca-file, --retries, --temp-dir) is the worker's own.
JOB_OPTIONS = ("platform", "os_", "architecture", "variant", "referrers", "compression",
               "compression_level", "parallel", "verify", "verify_full", "rate_limit",
               "layer_cache", "insecure")


def make_app(broker, visibility_timeout=VISIBILITY_TIMEOUT):
    """The Celery app on broker (Redis, which also keeps the results)."""
    celery = need("celery")
    need("redis")
    app = celery.Celery("occystrap", broker=broker, backend=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_default_queue=QUEUE, task_acks_late=True, task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1, task_track_started=True,
        task_time_limit=int(visibility_timeout * 0.9), result_expires=RESULT_TTL,
        broker_transport_options={"visibility_timeout": visibility_timeout,
                                  "unacked_restore_interval": RESTORE_INTERVAL,
                                  "unacked_restore_throttle": 1},
        result_backend_transport_options={"visibility_timeout": visibility_timeout},
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        worker_redirect_stdouts=False)
    app.task(name=TASK, bind=True)(_copy_image)
    return app


def job_message(job, options, run_id, dry_run=False, keep_going=False):
    """The JSON a job travels as."""
    entry = job.entry
    return {"run": run_id, "source": job.source, "destination": job.destination,
            "dry_run": bool(dry_run), "keep_going": bool(keep_going),
            "entry": {"number": entry.number, "source": entry.source,
                      "destination": entry.destination, "filters": list(entry.filters),
                      "platforms": entry.platforms, "compression": entry.compression},
            "options": {k: options.get(k) for k in JOB_OPTIONS if options.get(k) is not None}}


def job_of(message):
    entry = dict(message["entry"], filters=tuple(message["entry"]["filters"]))
    return Job(message["source"], message["destination"], Entry(**entry))


def stop_key(run_id):
    """Set when no new image of the run may start (a failure without --keep-going, or
    a signal at the sender)."""
    return "%srun:%s:stop" % (KEY_PREFIX, run_id)


def stop(redis, run_id):
    redis.set(stop_key(run_id), 1, ex=86400)


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

