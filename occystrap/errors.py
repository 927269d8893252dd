"""The OccystrapError tree.  Messages are stable API: scripts match on them.

The CLI prints `Error: <message>` for any OccystrapError and exits 1, so every failure a
user can cause (bad URI, broken tarball, unsafe path) must surface as one of these.
"""
from ._native._common import TarError


class OccystrapError(Exception):
    """Base class of every error reported to the user as one line."""


class URIParseError(OccystrapError):
    """A source/destination URI or filter spec could not be understood."""


class OptionError(OccystrapError):
    """An option's value is outside what it accepts (a range, a set of words)."""


class InputError(OccystrapError):
    """The source image is missing, unreadable or malformed."""


class IntegrityError(InputError):
    """A layer's content does not hash to its diff_id.  result is the layer as read, so
    a read-only command (search) can still report what the layer holds."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


class LayerError(InputError):
    """One layer could not be read (decompressed, or parsed as a tar): index and
    reason say which and why, so a read-only run (check, search) reports it and goes on
    with the other layers."""

    def __init__(self, message, index, reason):
        super().__init__(message)
        self.index = index
        self.reason = reason


class OutputError(OccystrapError):
    """The destination could not be written."""


class SpecError(OccystrapError):
    """A `sync` spec file is unreadable or breaks its grammar; the message names the
    file and the entry ("spec.yaml: entry 2: ...")."""


class CredentialError(OccystrapError):
    """A Docker credential helper is missing, failed or answered nonsense."""


class UnsafePathError(OccystrapError):
    """A layer member would be written outside the destination root."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like KeyboardInterrupt for SIGINT: not an
    Exception, so it unwinds through every cleanup and the CLI exits 143."""


def describe_tar_error(exc, where):
    """Turn a TarError from the native core into an InputError naming the layer."""
    return InputError("%s: %s" % (where, exc))


__all__ = ["OccystrapError", "URIParseError", "OptionError", "InputError", "OutputError",
           "SpecError", "CredentialError", "UnsafePathError", "Terminated", "TarError",
           "describe_tar_error"]
