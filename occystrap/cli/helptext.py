"""Help sections built from the declarations: the filters (filters.FILTERS) and each
scheme's URI options (transports), so `--help` cannot drift from what is accepted."""
import click

from ..filters import FILTERS
from ..transports import classes
from ..model.schemes import ALIASES


def _names(declares):
    """`a, b (alias)`: the option names a filter or scheme class declares."""
    aliases = {}
    for alias, name in declares.OPTION_ALIASES.items():
        aliases.setdefault(name, []).append(alias)
    names = ["%s (%s)" % (name, ", ".join(aliases[name])) if name in aliases else name
             for name in declares.OPTIONS]
    return ", ".join(names) or "no options"


def _schemes_rows(role):
    spelt = {}
    for alias, scheme in ALIASES.items():
        spelt.setdefault(scheme, []).append(alias)
    return [("%s://" % "://, ".join([scheme] + spelt.get(scheme, [])), _names(cls))
            for scheme, cls in classes(role).items()]


def write_schemes(formatter, role, title):
    with formatter.section(title):
        formatter.write_dl(_schemes_rows(role))


def write_filters(formatter):
    with formatter.section("Filters (-f NAME[:KEY=VALUE,...])"):
        formatter.write_dl([(name, _names(cls)) for name, cls in FILTERS.items()])


class ProcessHelp(click.Command):
    """`process --help`: the filters and the URI options of every input and output."""

    def format_epilog(self, ctx, formatter):
        write_filters(formatter)
        write_schemes(formatter, "input", "Inputs (SOURCE) and their ?options")
        write_schemes(formatter, "output", "Outputs (DESTINATION) and their ?options")
        super().format_epilog(ctx, formatter)


class SearchHelp(click.Command):
    """`search --help`: the inputs it reads."""

    def format_epilog(self, ctx, formatter):
        write_schemes(formatter, "input", "Sources (SOURCE) and their ?options")
        super().format_epilog(ctx, formatter)
