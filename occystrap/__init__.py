"""occystrap: move and rewrite container images, fast and correctly."""
__version__ = "1.0.0.dev0"

from .api import copy, copy_uris  # noqa: E402
from .errors import OccystrapError  # noqa: E402

__all__ = ["__version__", "copy", "copy_uris", "OccystrapError"]
