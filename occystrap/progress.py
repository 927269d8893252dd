"""Progress reporting: a tqdm bar on a terminal, a log line per layer otherwise.

CI logs should not fill with carriage returns, and a person at a terminal wants to see
it move; both come from the same per-layer events.
"""
import logging
import sys
import threading

from .model import format_size

LOG = logging.getLogger("occystrap")


class Progress:
    def __init__(self, total, label="Layers", stream=None):
        self._stream = stream or sys.stderr
        self._total = total
        self._done = 0
        self._lock = threading.Lock()
        self._bar = None
        if total and getattr(self._stream, "isatty", lambda: False)():
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=label, unit="layer", file=self._stream,
                             leave=False)

    def layer_done(self, result, reused=False):
        with self._lock:
            self._done += 1
            if self._bar is not None:
                self._bar.update(1)
            else:
                LOG.info("Layer %d/%d %s: %s (%s)", self._done, self._total,
                         "reused" if reused else "done", result.digest,
                         format_size(result.blob_size or result.size))

    def close(self):
        if self._bar is not None:
            self._bar.close()
