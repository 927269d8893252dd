"""`occystrap sync SPEC --broker URL`: resolve the set here, send one job per image,
and wait for the workers' records (or, with --no-wait, return the job ids).

The report is a local sync's (mirror.run.SyncReport), each record naming its worker.
The first failed image stops the jobs not yet begun unless keep_going: the worker
whose image failed sets a key in Redis that every worker reads before it starts a
job (this end sets it too, on a signal).  The
jobs in flight finish either way: a job is one image, tagged only when complete.
"""
import time
import uuid

from ..mirror.run import SyncReport, resolve_jobs
from . import reachable, redis_client
from .blobs import run_keys
from .tasks import QUEUE, TASK, job_message, make_app, record_of, stop

POLL = 0.1              # seconds between looks at the results (one MGET of the pending)


def send(spec, options, broker, keep_going=False, dry_run=False):
    """(app, run id, [(job, AsyncResult)], unresolved records): the jobs sent."""
    reachable(broker)
    jobs, unresolved = resolve_jobs(spec, options, keep_going)
    app = make_app(broker)
    run_id = uuid.uuid4().hex
    if unresolved and not keep_going:
        return app, run_id, [], unresolved
    sent = [(job, app.send_task(TASK, args=[job_message(job, options, run_id, dry_run,
                                                        keep_going)], queue=QUEUE))
            for job in jobs]
    return app, run_id, sent, unresolved


def sync_with_broker(spec, options, broker, keep_going=False, dry_run=False,
                     on_image=None, on_jobs=None):
    """Like mirror.run.sync, with the images copied by `occystrap worker`s."""
    started = time.monotonic()
    app, run_id, sent, unresolved = send(spec, options, broker, keep_going, dry_run)
    if on_jobs is not None:
        on_jobs(len(sent) + len(unresolved))
    redis = redis_client(broker)
    records = {}
    try:
        by_id = {result.id: (position, job) for position, (job, result) in enumerate(sent)}
        for task_id, meta in app.backend.get_many(list(by_id), interval=POLL):
            position, job = by_id[task_id]
            record = _record(job, meta)
            if record is None:          # stopped before it began
                continue
            records[position] = record
            if on_image is not None:
                on_image(record)
    except BaseException:
        stop(redis, run_id)
        raise
    finally:
        for key in redis.scan_iter(match=run_keys(run_id), count=1000):
            redis.delete(key)
    for record in unresolved:
        if on_image is not None:
            on_image(record)
    done = unresolved + [records[p] for p in sorted(records)]
    return SyncReport(done, time.monotonic() - started, len(sent) - len(records))


def _record(job, meta):
    """The ImageRecord a finished job left (None: it did not begin), or a failed one
    when the task itself failed (a time limit, a worker's own error)."""
    from ..mirror.run import ImageRecord
    if meta["status"] == "SUCCESS":
        return None if meta["result"] is None else record_of(meta["result"])
    error = meta.get("result")
    if isinstance(error, dict):
        error = "%s: %s" % (error.get("exc_type"), error.get("exc_message"))
    return ImageRecord(job.source, job.destination,
                       error="job %s: %s" % (meta["status"].lower(), error))
