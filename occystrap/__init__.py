"""occystrap: move and rewrite container images, fast and correctly."""
__version__ = "1.0.0.dev0"

from .api import copy, copy_uris  # noqa: E402
from .errors import OccystrapError  # noqa: E402


def sync(spec, options=None, **kwargs):
    """Mirror what a sync spec names (a YAML path, a loaded document, or Entries);
    returns a SyncReport (docs/sync.md).  A function, so `occystrap.sync(spec)` reads
    as the CLI's `occystrap sync SPEC`; the machinery is the occystrap.mirror package."""
    from .mirror.run import sync as run
    return run(spec, options, **kwargs)


__all__ = ["__version__", "copy", "copy_uris", "sync", "OccystrapError"]
