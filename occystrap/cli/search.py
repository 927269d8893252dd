"""`occystrap search [--regex] [--script-friendly] SOURCE PATTERN` (B.3)."""
import sys

import click

from ..api import NullSink, copy
from ..filters.search import Search
from ..transports import open_source
from ..uri import FilterSpec, parse_uri
from . import cli
from .helptext import SearchHelp


@cli.command(cls=SearchHelp, help="Search for files in container image layers: print "
                                 "the members whose path matches PATTERN (fnmatch, or a "
                                 "regular expression with --regex).")
@click.option("--regex", is_flag=True, help="PATTERN is a regular expression (re.search).")
@click.option("--script-friendly", is_flag=True, help="Print image:tag:layer:path lines.")
@click.argument("source")
@click.argument("pattern")
@click.pass_obj
def search(options, regex, script_friendly, source, pattern):
    typed = {"pattern": pattern, "regex": regex, "script_friendly": script_friendly}
    spec = FilterSpec("search", typed, "search",
                      raw={key: str(value) for key, value in typed.items()})
    with open_source(parse_uri(source), options) as image:
        copy(image, NullSink(), [Search(spec)], parallel=options["parallel"], verify=False,
             out=sys.stdout)
    return 0
