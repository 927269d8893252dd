"""dir:// (alias directory://): an extracted docker-save layout, optionally expanded."""
from .. import register
from .sink import DirectorySink

register("dir", sink=DirectorySink.from_uri)
