"""`occystrap search [--regex] [--script-friendly] SOURCE PATTERN` (B.3)."""
import logging
import sys

import click

from ..api import NullSink, copy
from ..filters.search import Search
from ..transports import open_source
from ..uri import FilterSpec, parse_uri
from . import cli
from .helptext import SearchHelp

LOG = logging.getLogger(__name__)


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
    damaged = []        # 0.4.17 printed the matches of a corrupt layer; so do we, then fail
    with open_source(parse_uri(source), options) as image:
        copy(image, NullSink(), [Search(spec)], parallel=options["parallel"], verify=False,
             out=sys.stdout, damaged=damaged)
    sys.stdout.flush()
    if damaged:
        for error in damaged[1:]:
            LOG.warning("%s", error)
        raise damaged[0]
    return 0
