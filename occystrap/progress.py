"""Progress of a copy: bytes counted per task (each layer, a daemon's save), shown as they move.

On a terminal each task is a tqdm bar with its bytes and rate, made the moment the task
starts, so a long `docker save` shows at once instead of a blank screen.  Off a
terminal (CI logs, pipes) bars would fill the log with carriage returns, so a
`Progress:` line with the bytes done goes to the log (stderr) every few seconds instead,
next to one line per finished layer.  stdout stays free for machine output.
"""
import logging
import os
import sys
import threading

from .model import format_size

LOG = logging.getLogger("occystrap")

# seconds between two `Progress:` lines off a terminal
INTERVAL = float(os.environ.get("OCCYSTRAP_PROGRESS_SECONDS") or 5)


class Task:
    """The byte count of one piece of work; add() as bytes pass, close() at the end."""

    def __init__(self, progress, name, total, bar):
        self.name = name
        self.total = total
        self.done = 0
        self._progress = progress
        self._bar = bar

    def add(self, count):
        self.done += count              # one thread per task: no lock needed
        if self._bar is not None:
            self._bar.update(count)

    def counted(self, fileobj):
        """fileobj with every read and write added to this task."""
        return _Counted(fileobj, self)

    def close(self):
        self._progress._finished(self)


class _Counted:
    def __init__(self, fileobj, task):
        self._fileobj = fileobj
        self._task = task

    def read(self, size=-1):
        data = self._fileobj.read(size)
        self._task.add(len(data))
        return data

    def write(self, data):
        written = self._fileobj.write(data)
        self._task.add(len(data))
        return written

    def __getattr__(self, name):
        return getattr(self._fileobj, name)


class Progress:
    """One per copy.  Tasks may run in several threads at once."""

    def __init__(self, stream=None, interval=None, quiet=False):
        self._stream = stream or sys.stderr
        self._quiet = quiet             # count only (sync reports per image itself)
        self._tty = not quiet and getattr(self._stream, "isatty", lambda: False)()
        self._lock = threading.Lock()
        self._tasks = []                # open tasks, in the order they started
        self._closed_bytes = 0          # bytes of the tasks already closed
        self.layers = 0                 # the image's layer count, once known
        self._layers_done = 0
        self.reused = 0                 # layers the destination already had
        self.uploaded_bytes = 0         # stored bytes of the layers written
        self._stop = threading.Event()
        self._ticker = None
        if not self._tty and not quiet:
            self._ticker = threading.Thread(target=self._tick, args=(interval or INTERVAL,),
                                            name="occystrap-progress", daemon=True)
            self._ticker.start()

    def task(self, name, total=None):
        """Start counting the bytes of name (total: the bytes expected, if known)."""
        bar = None
        if self._tty:
            from tqdm import tqdm
            bar = tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                       file=self._stream, leave=False, dynamic_ncols=True)
        task = Task(self, name, total, bar)
        with self._lock:
            self._tasks.append(task)
        return task

    def _finished(self, task):
        with self._lock:
            if task in self._tasks:
                self._tasks.remove(task)
                self._closed_bytes += task.done
        if task._bar is not None:
            task._bar.close()

    def layer_done(self, result, reused=False):
        with self._lock:
            self._layers_done += 1
            done = self._layers_done
            if reused:
                self.reused += 1
            else:
                self.uploaded_bytes += result.blob_size or result.size or 0
        if not self._tty and not self._quiet:
            LOG.info("Layer %d/%d %s: %s (%s)", done, self.layers,
                     "reused" if reused else "done", result.digest,
                     format_size(result.blob_size or result.size))

    def line(self):
        """The off-terminal report: all bytes so far, then each open task's count."""
        with self._lock:
            tasks = list(self._tasks)
            total = self._closed_bytes + sum(task.done for task in tasks)
            layers = ", %d/%d layers done" % (self._layers_done, self.layers) \
                if self.layers else ""
        running = ["%s %s%s" % (task.name, format_size(task.done),
                                " of %s" % format_size(task.total) if task.total else "")
                   for task in tasks]
        return "Progress: %s done%s%s" % (format_size(total), layers,
                                          "; " + ", ".join(running) if running else "")

    def _tick(self, interval):
        while not self._stop.wait(interval):
            if self._tasks:             # nothing is moving between tasks: stay quiet
                LOG.info(self.line())

    def close(self):
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()         # its last line comes before the Summary line
        for task in list(self._tasks):
            task.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
