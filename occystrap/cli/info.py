"""`occystrap info SOURCE` (B.4): image metadata, text or `-O json`; reads no layer."""
import json

import click

from ..report.info import image_info, render_text
from ..transports import open_source
from ..uri import parse_uri
from . import cli


@cli.command(help="Display information about a container image.\n\n"
                  "SOURCE is registry://HOST/IMAGE:TAG, docker://IMAGE:TAG or tar://PATH.  "
                  "Use the global -O json (before the command) for JSON output.")
@click.argument("source")
@click.pass_obj
def info(options, source):
    with open_source(parse_uri(source), options) as image:
        data = image_info(image)
    if options.get("output_format") == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render_text(data))
    return 0
