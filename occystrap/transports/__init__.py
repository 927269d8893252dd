"""Transport registry: each scheme registers its source and/or sink factory.

A source or sink class is registered; its OPTIONS ({name: value type}, uri.py) and
OPTION_ALIASES declare the URI query it accepts, and its from_uri(uri, options) gets the
URI with those options checked and typed (options are the global CLI options).
Lookups on an unknown scheme raise URIParseError with the 0.4.17 messages.
"""
import dataclasses
import importlib

from ..errors import URIParseError
from ..model.schemes import MODULES
from ..uri import check_options

_SOURCES = {}
_SINKS = {}


def register(scheme, source=None, sink=None):
    """Register the source and/or sink class of a URI scheme."""
    if source is not None:
        _SOURCES[scheme] = source
    if sink is not None:
        _SINKS[scheme] = sink
        sink.scheme = scheme


# MODULES (model/schemes.py): scheme -> the subpackage that registers it; imported on
# first use, so a run only loads the transports it touches.


def _load(scheme):
    if scheme in MODULES and scheme not in _SOURCES and scheme not in _SINKS:
        try:
            importlib.import_module("." + MODULES[scheme], __name__)
        except ModuleNotFoundError as exc:
            if exc.name != "%s.%s" % (__name__, MODULES[scheme]):
                raise                   # a real missing dependency, not a missing transport


def _lookup(uri, role):
    _load(uri.scheme)
    cls = (_SOURCES if role == "input" else _SINKS).get(uri.scheme)
    if cls is None:
        raise URIParseError("Unknown %s scheme: %s" % (role, uri.scheme))
    return cls


def classes(role):
    """{scheme: class} of every scheme that is an "input" or "output" (role), loading
    all transports: what help texts list, read from the declarations themselves."""
    for scheme in MODULES:
        _load(scheme)
    return dict(sorted((_SOURCES if role == "input" else _SINKS).items()))


def checked(uri, role):
    """uri with its query checked against the scheme's declaration for role ("input"
    or "output") and typed; so a whole copy is refused before anything is opened.

    :raises URIParseError: unknown scheme, unknown option or bad option value.
    """
    cls = _lookup(uri, role)
    options = check_options(uri.raw or {}, cls.OPTIONS, cls.OPTION_ALIASES,
                            where="%s:// %s" % (uri.scheme, role))
    return dataclasses.replace(uri, options=options)


def open_source(uri, options=None):
    return _lookup(uri, "input").from_uri(checked(uri, "input"), options or {})


def open_sink(uri, options=None):
    return _lookup(uri, "output").from_uri(checked(uri, "output"), options or {})
