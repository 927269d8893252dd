"""tar:// (alias file://): docker-save tarballs, read and written."""
from .. import register
from .sink import TarballSink
from .source import TarballSource

register("tar", source=TarballSource, sink=TarballSink)
