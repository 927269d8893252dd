"""`occystrap sync SPEC.yaml`: many images in one run (docs/sync.md)."""
import json
import sys
import threading

import click

from ..atomicfile import write_atomic
from ..model import format_size
from ..mirror.run import describe, summary_line, sync as run_sync
from . import cli


def _print(record):
    click.echo(describe(record), err=True)


class ImagesBar:
    """On a terminal: one bar over the images, with the bytes uploaded so far; each
    image's line is printed above it as the image ends."""

    def __init__(self):
        self._bar = None
        self._bytes = 0
        self._lock = threading.Lock()

    def start(self, count):
        from tqdm import tqdm
        self._bar = tqdm(total=count, desc="images", unit="image", file=sys.stderr,
                         leave=False, dynamic_ncols=True)

    def done(self, record):
        with self._lock:
            self._bytes += record.bytes_uploaded
            if self._bar is None:
                _print(record)
                return
            self._bar.write(describe(record), file=sys.stderr)
            self._bar.set_postfix_str("%s uploaded" % format_size(self._bytes))
            self._bar.update(1)

    def close(self):
        if self._bar is not None:
            self._bar.close()


@cli.command(help="Mirror the repositories and tags SPEC (a YAML file) names: -J images "
                  "at once, -j layers within each; images the destination already has "
                  "are skipped.  The exit status is 1 if any image failed.")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--keep-going", is_flag=True,
              help="Go on with the other images after one fails (default: start no new "
                   "image after the first failure).")
@click.option("--dry-run", is_flag=True,
              help="Resolve the whole set and print what would be copied; write nothing.")
@click.option("--digestfile", type=click.Path(dir_okay=False),
              help="Write one DESTINATION@sha256:... line per image to this file.")
@click.option("--broker", envvar="OCCYSTRAP_BROKER",
              help="Send one job per image to the `occystrap worker`s of this Redis "
                   "broker (redis://HOST:PORT/DB) and wait for them, instead of copying "
                   "here (docs/distributed.md).")
@click.option("--no-wait", is_flag=True,
              help="With --broker: print the job ids and return once they are sent.")
@click.pass_obj
def sync(options, spec, keep_going, dry_run, digestfile, broker, no_wait):
    if no_wait:
        if not broker:
            raise click.BadParameter("--no-wait needs --broker", param_hint="'--no-wait'")
        if digestfile:
            raise click.BadParameter("--no-wait writes no --digestfile (the digests are "
                                     "known only when the jobs end)",
                                     param_hint="'--digestfile'")
        return _send_only(spec, options, broker, keep_going, dry_run)
    bar = ImagesBar() if sys.stderr.isatty() else None
    run = run_sync
    if broker:
        from ..distributed.submit import sync_with_broker

        def run(spec, options, **kwargs):
            return sync_with_broker(spec, options, broker, **kwargs)
    try:
        report = run(spec, options, keep_going=keep_going, dry_run=dry_run,
                     on_image=bar.done if bar else _print,
                     on_jobs=bar.start if bar else None)
    finally:
        if bar is not None:
            bar.close()
    click.echo(summary_line(report), err=True)
    if options.get("output_format") == "json":
        click.echo(json.dumps(report.as_dict(), indent=2))
    if digestfile and not dry_run:
        lines = ["%s@%s\n" % (r.destination, r.digest) for r in report.images if r.digest]
        write_atomic(digestfile, "".join(lines).encode())
    sys.stdout.flush()
    if report.failed:
        failed = [r for r in report.images if r.status == "failed"]
        click.echo("Error: %d of %d images failed (first: %s: %s)"
                   % (len(failed), len(report.images) + report.not_started,
                      failed[0].source, failed[0].error), err=True)
        return 1
    return 0


def _send_only(spec, options, broker, keep_going, dry_run):
    """--no-wait: one `JOB_ID SOURCE DESTINATION` line per job sent (JSON with -O json)."""
    from ..distributed.submit import send
    sent = send(spec, options, broker, keep_going, dry_run)
    for record in sent.unresolved:
        _print(record)
    if options.get("output_format") == "json":
        click.echo(json.dumps({"run": sent.run_id, "jobs": [
            {"id": task_id, "source": job.source, "destination": job.destination}
            for job, task_id in sent.jobs]}, indent=2))
    else:
        for job, task_id in sent.jobs:
            click.echo("%s %s %s" % (task_id, job.source, job.destination))
    click.echo("Sent %d jobs (run %s)" % (len(sent.jobs), sent.run_id), err=True)
    return 1 if sent.unresolved else 0
