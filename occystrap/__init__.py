"""occystrap: move and rewrite container images, fast and correctly."""
__version__ = "1.0.0.dev0"

from .api import copy, copy_uris  # noqa: E402
from .errors import OccystrapError  # noqa: E402


def sync(spec, options=None, broker=None, **kwargs):
    """Mirror what a sync spec names (a YAML path, a loaded document, or Entries);
    returns a SyncReport (docs/sync.md).  With broker (redis://HOST:PORT/DB) the
    images are copied by the `occystrap worker`s of that broker (docs/distributed.md).
    A function, so `occystrap.sync(spec)` reads as the CLI's `occystrap sync SPEC`; the
    machinery is the occystrap.mirror and occystrap.distributed packages."""
    if broker is not None:
        from .distributed.submit import sync_with_broker
        return sync_with_broker(spec, dict(options or {}), broker, **kwargs)
    from .mirror.run import sync as run
    return run(spec, options, **kwargs)


__all__ = ["__version__", "copy", "copy_uris", "sync", "OccystrapError"]
