"""ocidir:// (an OCI image layout directory) and oci-archive:// (a tar of one), in and
out: `PATH[:TAG]`, several tags per layout, byte-exact index copies."""
from .. import register
from .sink import ArchiveSink, OcidirSink
from .source import ArchiveSource, OcidirSource

register("ocidir", source=OcidirSource, sink=OcidirSink)
register("oci-archive", source=ArchiveSource, sink=ArchiveSink)
