"""`occystrap worker --broker URL`: a Celery worker for the jobs `sync --broker` sends
(docs/distributed.md)."""
import socket

import click

from ..distributed.tasks import MIN_VISIBILITY_TIMEOUT, VISIBILITY_TIMEOUT
from . import cli


def _nodename(name):
    """NAME@HOST, as Celery names workers; the host is added when name has none."""
    name = name or "occystrap"
    return name if "@" in name else "%s@%s" % (name, socket.gethostname())


@cli.command(help="Run a Celery worker that copies the images `occystrap sync --broker` "
                  "sends, one image per job (pip install 'occystrap[distributed]').  The "
                  "global credentials, --ca-file, --retries and --temp-dir are this "
                  "worker's; the copy's options (filters, platforms, compression, -j, "
                  "--rate-limit, --layer-cache) come with each job, and --insecure from "
                  "either side.")
@click.option("--broker", required=True, envvar="OCCYSTRAP_BROKER",
              help="Redis URL of the broker and shared state: redis://HOST:PORT/DB.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Images this worker copies at once (each with the sync's -j layers).")
@click.option("--name", help="Worker name, NAME or NAME@HOST (default: "
                             "occystrap@HOSTNAME); must be unique.")
@click.option("--visibility-timeout",
              type=click.IntRange(MIN_VISIBILITY_TIMEOUT, 7 * 86400),
              default=VISIBILITY_TIMEOUT, show_default=True,
              help="Seconds before an unacknowledged job (its worker lost) goes to "
                   "another worker; longer than the longest job.  Every worker of one "
                   "broker should use the same.")
@click.pass_obj
def worker(options, broker, concurrency, name, visibility_timeout):
    from ..distributed.tasks import QUEUE, make_app
    from ..distributed.worker import WorkerState
    WorkerState(broker, options).install()
    app = make_app(broker, visibility_timeout)
    argv = ["worker", "--loglevel", "DEBUG" if options.get("verbose") else "INFO",
            "--concurrency", str(concurrency), "--pool", "prefork", "--queues", QUEUE,
            "--hostname", _nodename(name),
            "--without-gossip", "--without-mingle"]
    try:
        app.worker_main(argv=argv)
    except SystemExit as exc:
        return exc.code or 0
    return 0
