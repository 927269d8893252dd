"""`occystrap process SOURCE DESTINATION [-f FILTER]...` and its Summary line (B.1)."""
import sys

import click

from ..api import copy_uris
from ..model import format_size
from . import cli
from .helptext import ProcessHelp


def summary_line(report):
    parts = ["%d layers" % report.layers, format_size(report.bytes), "%.1fs" % report.seconds]
    if report.verify_errors is not None:
        parts.append("verified OK" if not report.verify_errors
                     else "%d verify errors" % len(report.verify_errors))
    return "Summary: " + ", ".join(parts)


@cli.command(cls=ProcessHelp,
             help="Process container images through a pipeline: read SOURCE, pass every "
                  "layer through the filters in order, write DESTINATION.")
@click.argument("source")
@click.argument("destination")
@click.option("-f", "--filter", "filters", multiple=True,
              help="Filter spec name[:k=v,...]; repeat to chain, applied in order.")
@click.pass_obj
def process(options, source, destination, filters):
    report = copy_uris(source, destination, filters, options, out=sys.stdout)
    click.echo(summary_line(report), err=True)
    if report.verify_errors:
        click.echo("Verification errors:", err=True)
        for message in report.verify_errors:
            click.echo("  %s" % message, err=True)
        return 1
    return 0
