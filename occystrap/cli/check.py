"""`occystrap check [--fast] SOURCE` (B.5): validate an image; exit 1 on any error."""
import click

from ..check import render_text, run_checks, to_json
from ..transports import open_source
from ..uri import parse_uri
from . import cli


@cli.command(help="Check validity of a container image.\n\n"
                  "Validates structural integrity, history consistency, compression "
                  "compatibility and filesystem correctness.  SOURCE is "
                  "registry://HOST/IMAGE:TAG, docker://IMAGE:TAG or tar://PATH.  "
                  "The exit status is 1 if any error is found.")
@click.option("--fast", is_flag=True, help="Skip layer downloads, check metadata only.")
@click.argument("source")
@click.pass_context
def check(ctx, fast, source):
    options = ctx.obj
    with open_source(parse_uri(source), options) as image:
        report = run_checks(image, fast=fast, parallel=options.get("parallel", 4))
    if options.get("output_format") == "json":
        click.echo(to_json(report))
    else:
        click.echo(render_text(report))
    if report.has_errors:
        ctx.exit(1)
    return 0
