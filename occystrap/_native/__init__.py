"""Selects the native core: the Cython extensions, or their pure-Python twins.

OCCYSTRAP_NO_EXTENSIONS=1, a non-CPython interpreter or a missing extension selects the
twins.  This module only chooses; all logic lives in the twins (design rule 3).
"""
import logging
from importlib import machinery
import os
import platform

from . import _common  # noqa: F401

IMPLEMENTATION = "python"
_WANT_NATIVE = (os.environ.get("OCCYSTRAP_NO_EXTENSIONS") != "1"
                and platform.python_implementation() == "CPython")
if _WANT_NATIVE:
    try:
        from . import globset, rewrite, tarstream
        # tarstream.py and globset.py are the symlinked sources of the compiled modules:
        # without a build they import as plain Python, which is not the compiled core.
        for _module in (globset, rewrite, tarstream):
            if not _module.__file__.endswith(tuple(machinery.EXTENSION_SUFFIXES)):
                raise ImportError("%s is not compiled" % _module.__name__)
        IMPLEMENTATION = "cython"
    except ImportError as exc:
        logging.getLogger(__name__).debug("native core unavailable (%s); using pure Python", exc)
if IMPLEMENTATION == "python":
    from . import globset_py as globset, rewrite_py as rewrite, tarstream_py as tarstream  # noqa: F811

__all__ = ["IMPLEMENTATION", "globset", "rewrite", "tarstream"]
