"""Transport registry: each scheme registers its source and/or sink factory.

A factory takes (uri, options) where options are the global CLI options; lookups on an
unknown scheme raise URIParseError with the 0.4.17 messages.
"""
import importlib

from ..errors import URIParseError

_SOURCES = {}
_SINKS = {}


def register(scheme, source=None, sink=None):
    """Register factories for a URI scheme."""
    if source is not None:
        _SOURCES[scheme] = source
    if sink is not None:
        _SINKS[scheme] = sink


# scheme -> the subpackage that registers it; imported on first use, so a run only
# loads the transports it touches.
MODULES = {"tar": "tarball", "dir": "directory", "oci": "ocibundle", "registry": "registry",
           "docker": "docker", "dockerpush": "dockerpush", "mounts": "mounts"}


def _load(scheme):
    if scheme in MODULES and scheme not in _SOURCES and scheme not in _SINKS:
        try:
            importlib.import_module("." + MODULES[scheme], __name__)
        except ModuleNotFoundError as exc:
            if exc.name != "%s.%s" % (__name__, MODULES[scheme]):
                raise                   # a real missing dependency, not a missing transport


def open_source(uri, options=None):
    _load(uri.scheme)
    factory = _SOURCES.get(uri.scheme)
    if factory is None:
        raise URIParseError("Unknown input scheme: %s" % uri.scheme)
    return factory(uri, options or {})


def open_sink(uri, options=None):
    _load(uri.scheme)
    factory = _SINKS.get(uri.scheme)
    if factory is None:
        raise URIParseError("Unknown output scheme: %s" % uri.scheme)
    return factory(uri, options or {})
