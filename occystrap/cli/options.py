"""The global options of 0.4.17 (A.1), with their environment variables.

Numbers are range-checked here (docs/cli.md lists the ranges); a bad value is an
`Error: Invalid value for '--X': ...` line and exit 1 (cli.main).
"""
import math

import click

from ..errors import OptionError
from ..model import MAX_PARALLEL, MAX_RETRIES, RATE_LIMIT_RANGE
from ..model.platforms import parse_platforms


class RateLimit(click.ParamType):
    """Requests per second: a finite number in RATE_LIMIT_RANGE (click's FloatRange lets
    nan through, and 0 or inf would mean no limit while looking like one)."""
    name = "float"

    def convert(self, value, param, ctx):
        low, high = RATE_LIMIT_RANGE
        try:
            rate = float(value)
        except (TypeError, ValueError):
            rate = math.nan
        if not low <= rate <= high:         # false for nan too
            self.fail("%r is not a number of requests per second from %s to %s"
                      % (value, low, high), param, ctx)
        return rate


PARALLEL = click.IntRange(1, MAX_PARALLEL)


def _platforms(ctx, param, value):
    """--platform checked when it is given (the value stays as typed)."""
    try:
        parse_platforms(value)
    except OptionError as exc:
        raise click.BadParameter(str(exc)) from None
    return value

OPTIONS = [
    click.option("--verbose", is_flag=True, help="Debug logging for occystrap."),
    click.option("--debug", is_flag=True,
                 help="Debug logging for everything, tracebacks on errors."),
    click.option("--os", "os_", default="linux", help="OS to select from a manifest list."),
    click.option("--architecture", default="amd64",
                 help="Architecture to select from a manifest list."),
    click.option("--variant", default="", help="CPU variant to select from a manifest list."),
    click.option("--platform", envvar="OCCYSTRAP_PLATFORM", callback=_platforms,
                 help="Platforms of a multi-platform image: all, or OS/ARCH[/VARIANT][,...]; "
                      "one platform picks one image, all or several copy the index "
                      "(default: one image, chosen by --os/--architecture/--variant)."),
    click.option("--referrers", is_flag=True, envvar="OCCYSTRAP_REFERRERS",
                 help="Also copy the source's referrers (signatures, SBOMs, attestations) "
                      "when the image is copied unchanged (OCI referrers API, or the "
                      "sha256-<hex> tags cosign uses)."),
    click.option("--username", envvar="OCCYSTRAP_USERNAME",
                 help="Registry username (source and destination)."),
    click.option("--password", envvar="OCCYSTRAP_PASSWORD",
                 help="Registry password (source and destination)."),
    click.option("--src-username", envvar="OCCYSTRAP_SRC_USERNAME",
                 help="Username for the source registry (overrides --username)."),
    click.option("--src-password", envvar="OCCYSTRAP_SRC_PASSWORD",
                 help="Password for the source registry (overrides --password)."),
    click.option("--dest-username", envvar="OCCYSTRAP_DEST_USERNAME",
                 help="Username for the destination registry (overrides --username)."),
    click.option("--dest-password", envvar="OCCYSTRAP_DEST_PASSWORD",
                 help="Password for the destination registry (overrides --password)."),
    click.option("--insecure", is_flag=True, help="Use plain HTTP for registries."),
    click.option("--compression", type=click.Choice(["gzip", "zstd"]),
                 envvar="OCCYSTRAP_COMPRESSION", help="Layer compression for registry output."),
    click.option("--compression-level", type=int, envvar="OCCYSTRAP_COMPRESSION_LEVEL",
                 help="Compression level for registry output (gzip: 0-9, default 1; ISA-L "
                      "for 0-3, zlib for 4-9; zstd: 1-22, default 3)."),
    click.option("--ca-file", envvar="OCCYSTRAP_CA_FILE", type=click.Path(dir_okay=False),
                 help="PEM file of CA certificates to trust for registries (default: "
                      "SSL_CERT_FILE, else the system store)."),
    click.option("-j", "--parallel", type=click.IntRange(0, MAX_PARALLEL), default=4,
                 show_default=True, envvar="OCCYSTRAP_PARALLEL",
                 help="Layers processed at once; 0 means one per usable CPU."),
    click.option("--temp-dir", envvar="OCCYSTRAP_TEMP_DIR", help="Where temporary files go."),
    click.option("--layer-cache", envvar="OCCYSTRAP_LAYER_CACHE",
                 help="Layer cache: an SQLite file, or redis://HOST:PORT/DB to share it."),
    click.option("-O", "--output-format", type=click.Choice(["text", "json"]), default="text",
                 help="Output format of info and check."),
    click.option("--retries", type=click.IntRange(0, MAX_RETRIES), default=3,
                 envvar="OCCYSTRAP_RETRIES", help="HTTP retries."),
    click.option("--rate-limit", type=RateLimit(), envvar="OCCYSTRAP_RATE_LIMIT",
                 help="Maximum HTTP requests per second (%s to %s)." % RATE_LIMIT_RANGE),
    click.option("-J", "--image-parallel", type=PARALLEL, default=3,
                 envvar="OCCYSTRAP_IMAGE_PARALLEL", help="Images processed at once."),
    click.option("--verify/--no-verify", default=True, envvar="OCCYSTRAP_VERIFY",
                 help="Verify the output after writing."),
    click.option("--verify-full", is_flag=True, envvar="OCCYSTRAP_VERIFY_FULL",
                 help="Deeper verification (re-reads every layer); implies --verify."),
]


def global_options(func):
    for option in reversed(OPTIONS):
        func = option(func)
    return func
