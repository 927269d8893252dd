"""`occystrap sync SPEC.yaml`: many images in one run (docs/sync.md)."""
import json
import sys

import click

from ..atomicfile import write_atomic
from ..mirror.run import describe, summary_line, sync as run_sync
from . import cli


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
@click.pass_obj
def sync(options, spec, keep_going, dry_run, digestfile):
    report = run_sync(spec, options, keep_going=keep_going, dry_run=dry_run,
                      on_image=lambda record: click.echo(describe(record), err=True))
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
