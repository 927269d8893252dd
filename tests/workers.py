"""`occystrap worker` processes for the tests and benchmarks: started as a user would
(`python -m occystrap worker --broker URL`), each in its own process group so that
kill() takes it down whole, as `kill -9` on a machine would."""
import os
import signal
import subprocess
import tempfile
import time

from tests.cli import background


class Worker:
    """One worker; .log() is what it printed, .name its Celery node name."""

    def __init__(self, broker, name, *options, visibility_timeout=None, concurrency=1,
                 pure=False):
        self.name = "%s@test" % name
        self.log_file = tempfile.NamedTemporaryFile(prefix="oc-worker-%s-" % name,
                                                    suffix=".log", delete=False)
        command = ["worker", "--broker", broker, "--name", self.name,
                   "--concurrency", str(concurrency)]
        if visibility_timeout is not None:
            command += ["--visibility-timeout", str(visibility_timeout)]
        self.proc = background(*options, *command, pure=pure, stdout=self.log_file,
                               stderr=subprocess.STDOUT, start_new_session=True)

    def log(self):
        with open(self.log_file.name, errors="replace") as f:
            return f.read()

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while "ready." not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("worker %s did not start:\n%s" % (self.name, self.log()))
            time.sleep(0.1)
        return self

    def kill(self):
        """SIGKILL to the whole process group: the worker and its pool at once."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self, timeout=30):
        """SIGTERM (Celery's warm shutdown), then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
            except ProcessLookupError:
                pass
        self.kill()
        os.unlink(self.log_file.name)


def started(broker, names, *options, **kwargs):
    """Workers for names, all ready."""
    workers = [Worker(broker, name, *options, **kwargs) for name in names]
    try:
        for worker in workers:
            worker.wait_ready()
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return workers
