"""dir:// (alias directory://): an extracted docker-save layout, optionally expanded.

Written by the sink and read back by the source (spec A.3: 0.4.17 had no dir:// input).
"""
from .. import register
from .sink import DirectorySink
from .source import DirectorySource

register("dir", source=DirectorySource, sink=DirectorySink)
