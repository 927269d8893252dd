"""`occystrap check [--fast] SOURCE` (B.5): validate an image; exit 1 on any error."""
import click

from ..report.check import render_set_text, run_set_checks, set_to_json
from ..transports import open_source
from ..uri import parse_uri
from . import cli


@cli.command(help="Check validity of a container image.\n\n"
                  "Validates structural integrity, history consistency, compression "
                  "compatibility and filesystem correctness.  SOURCE is "
                  "registry://HOST/IMAGE:TAG, docker://IMAGE:TAG or tar://PATH.  "
                  "With --platform all (or a list), every selected image of an index is "
                  "checked.  The exit status is 1 if any error is found.")
@click.option("--fast", is_flag=True, help="Skip layer downloads, check metadata only.")
@click.argument("source")
@click.pass_context
def check(ctx, fast, source):
    options = ctx.obj
    with open_source(parse_uri(source), options) as image:
        reports = run_set_checks(image, fast=fast, parallel=options.get("parallel", 4))
    if options.get("output_format") == "json":
        click.echo(set_to_json(reports))
    else:
        click.echo(render_set_text(reports))
    if any(report.has_errors for _name, report in reports):
        ctx.exit(1)
    return 0
