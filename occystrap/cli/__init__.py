"""Command line: the `occystrap` group, its global options and the error boundary.

Every failure a user can cause ends as one `Error: <message>` line on stderr and exit
status 1 (0.4.17 printed tracebacks for some, E.2 #14); `--debug` adds the traceback.
Machine output goes to stdout, logs and the Summary line to stderr.

SIGINT and SIGTERM unwind as exceptions, so every output removes what it half wrote:
`Error: interrupted` and status 130 (128 + SIGINT), `Error: terminated` and 143.
"""
import importlib
import logging
import signal
import sys

import click

from .. import __version__
from .._native import IMPLEMENTATION
from ..errors import OccystrapError, Terminated
from .options import global_options

LOG = logging.getLogger("occystrap")


def _setup_logging(verbose, debug):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    LOG.setLevel(logging.DEBUG if (verbose or debug) else logging.INFO)


@click.group(help="occystrap: move and rewrite container images.")
@click.version_option(__version__, "--version", prog_name="occystrap",
                      message="%(prog)s %(version)s (" + IMPLEMENTATION + " core)")
@global_options
@click.pass_context
def cli(ctx, **options):
    _setup_logging(options["verbose"], options["debug"])
    ctx.obj = options


def _register_commands():
    from . import check, info, process, search  # noqa: F401
    # commands that live in their own modules
    for optional in ("proxy", "legacy", "sync", "worker"):
        try:
            importlib.import_module("." + optional, __name__)
        except ModuleNotFoundError as exc:
            if exc.name != "%s.%s" % (__name__, optional):
                raise


_register_commands()


def _terminate(signum, frame):
    """SIGTERM: unwind the main thread; a second one must not interrupt the cleanup."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def main(argv=None):
    """Entry point: run the CLI and turn every failure into `Error: ...` + exit 1."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    signal.signal(signal.SIGTERM, _terminate)   # the proxy installs its own while it serves
    try:
        code = cli.main(args=argv, prog_name="occystrap", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
            # a bad value is bad input like any other (exit 1, one line); a malformed
            # command line (missing argument, unknown option) keeps click's usage and 2
            click.echo("Error: %s" % exc.format_message(), err=True)
            code = 1
        else:
            exc.show()
            code = exc.exit_code
    except (click.Abort, KeyboardInterrupt):   # click turns Ctrl-C into Abort
        click.echo("Error: interrupted", err=True)
        code = 130
    except Terminated:
        click.echo("Error: terminated", err=True)
        code = 143
    except OccystrapError as exc:
        if debug:
            LOG.exception("failed")
        click.echo("Error: %s" % exc, err=True)
        code = 1
    except OSError as exc:
        if debug:
            LOG.exception("failed")
        where = " (%s)" % exc.filename if exc.filename else ""
        click.echo("Error: %s%s" % (exc.strerror or exc, where), err=True)
        code = 1
    except Exception as exc:  # a bug: still one line, the traceback only with --debug
        if debug:
            LOG.exception("internal error")
        click.echo("Error: internal error: %s: %s" % (type(exc).__name__, exc), err=True)
        code = 1
    sys.stdout.flush()
    sys.exit(code or 0)


__all__ = ["cli", "main"]
