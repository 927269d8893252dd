"""The filters, looked up by name (0.4.17 A.5)."""
from ..errors import URIParseError
from ..uri import parse_filter
from .exclude import Exclude
from .inspect import Inspect
from .normalize_timestamps import NormalizeTimestamps
from .search import Search

FILTERS = {cls.name: cls for cls in (NormalizeTimestamps, Exclude, Search, Inspect)}


def build_filter(text):
    """A Filter from its `-f` spec text."""
    spec = parse_filter(text)
    cls = FILTERS.get(spec.name)
    if cls is None:
        raise URIParseError("Unknown filter: %s" % spec.name)
    return cls(spec)
