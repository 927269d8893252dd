"""Expand layers in a thread of their own while later layers are still being copied.

Layers must be applied bottom first, but they finish copying in any order; this applies
each one as soon as it and every layer below it are on disk.  Expansion (mostly file
creation in the kernel) then overlaps the copy instead of starting after it, which is
most of a tar -> dir?expand=true run's wall time.
"""
import threading

from .expand import LayerExpander


class BackgroundExpander:
    """Applies layers in order as they arrive, in a thread from helpers (the copier's
    transports.base.Helpers)."""

    def __init__(self, root, helpers):
        self._expander = LayerExpander(root)
        self._ready = {}                # index -> layer path, not yet applied
        self._next = 0                  # index of the next layer to apply
        self._error = None
        self._cancelled = False
        self._cond = threading.Condition()
        self._thread = helpers.start(self._run, name="occystrap-expand")

    def add(self, index, layer_path):
        """Layer `index` (0 = bottom) is complete at layer_path.  Re-raises an error the
        expansion already hit, so the copy stops early instead of finishing for nothing."""
        with self._cond:
            if self._error is not None:
                raise self._error
            self._ready[index] = layer_path
            self._cond.notify()

    def _run(self):
        while True:
            with self._cond:
                while not self._cancelled and self._next not in self._ready:
                    self._cond.wait()
                if self._cancelled:
                    return
                path = self._ready.pop(self._next)
            try:
                self._expander.apply(path)
            except BaseException as exc:    # handed to the copying threads and finish()
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self._next += 1
                self._cond.notify_all()

    def finish(self, count):
        """Wait until layers 0..count-1 are applied; return the expansion counts."""
        with self._cond:
            while self._error is None and self._next < count:
                self._cond.wait()
            self._cancelled = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._expander.finish()

    def cancel(self):
        """Stop after the layer in progress (abort); the caller removes the tree."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()
        self._thread.join()
