#!/usr/bin/env python3
"""`occystrap sync --broker` on 1, 2 and 3 `occystrap worker`s against a local sync.

    python benchmarks/compare_workers.py [--images 12] [--base-mb 16] [--own-mb 8]
        [--repeat 3] [--filter normalize-timestamps] [--markdown FILE]

The set is compare_sync.py's: IMAGES two-platform OCI indexes in a source
docker-registry on tmpfs, one base layer shared by every child and a random layer of
its own per child.  Each measured run mirrors the repository into a fresh destination
registry (tmpfs), with the filter (default normalize-timestamps, so every own layer is
rewritten: the CPU-bound case; `--filter none` for byte-exact copies).  The workers
(each --concurrency 1, -j 4 layers) are started before each run's clock starts
and stopped after it; redis-server is the broker.  Reported: median wall time per setup and
the speed-up over one worker, and the CPU time of the sync and the workers (the
registries use the rest of the two cores).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, HERE)

import peers  # noqa: E402
from compare_imageset import ShmRegistry, cpu_of, stat_fields  # noqa: E402
from compare_sync import SHM, SRC_REPO, run_child  # noqa: E402
from tests.workers import started  # noqa: E402
from output import publish  # noqa: E402


def write_spec(path, src, dst, filters):
    with open(path, "w") as f:
        f.write("sync:\n  - source: registry://%s/%s\n    destination: registry://%s/mirror/app\n"
                "    platforms: all\n    tags: ['t[0-9]+']\n" % (src, SRC_REPO, dst))
        if filters:
            f.write("    filters: [%s]\n" % filters)


def group_cpu(pgid):
    """CPU seconds the processes of one process group (a worker and its pool) used."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(stat_fields(entry)[2]) == pgid:  # pgrp: the 5th field, 3rd after ")"
                    total += cpu_of(entry)
            except OSError:                             # the process just ended
                continue
    return total


def sync_argv(spec, broker=None, images=1):
    argv = [sys.executable, "-m", "occystrap", "--insecure", "-J", str(images), "-O", "json",
            "sync", spec]
    return argv + (["--broker", broker] if broker else [])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--base-mb", type=int, default=16)
    parser.add_argument("--own-mb", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--filter", default="normalize-timestamps")
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    filters = None if args.filter == "none" else args.filter
    env = dict(os.environ, PYTHONPATH=REPO)
    work = tempfile.mkdtemp(prefix="bench-workers-", dir=SHM)
    source = ShmRegistry(SHM).start()
    redis = peers.RedisServer().start()
    fleet = []
    samples = {}
    setups = [("local sync -J 1", None, 1, 0), ("local sync -J 2", None, 2, 0),
              ("1 worker", "broker", 1, 1), ("2 workers", "broker", 1, 2),
              ("3 workers", "broker", 1, 3)]
    try:
        print("pushing %d two-platform images ..." % args.images, flush=True)
        subprocess.run([sys.executable, os.path.join(HERE, "compare_sync.py"), "--build",
                        source.url, "--images", str(args.images), "--base-mb",
                        str(args.base_mb), "--own-mb", str(args.own_mb)], check=True,
                       env=env, cwd=REPO)
        for round_ in range(args.repeat):
            for name, broker, images, count in setups:
                dest = ShmRegistry(SHM).start()
                fleet = started(redis.url, ["w%d" % n for n in range(1, count + 1)],
                                "--insecure")       # before the clock starts
                try:
                    spec = os.path.join(work, "spec.yaml")
                    write_spec(spec, source.url, dest.url, filters)
                    print("[%d/%d] %s ..." % (round_ + 1, args.repeat, name), flush=True)
                    before = sum(group_cpu(w.proc.pid) for w in fleet)
                    wall, cpu, _rss, out = run_child(
                        sync_argv(spec, redis.url if broker else None, images), env)
                    cpu += sum(group_cpu(w.proc.pid) for w in fleet) - before
                    report = json.loads(out)
                    assert report["summary"]["copied"] == args.images, report["summary"]
                    workers = sorted({r.get("worker", "-") for r in report["images"]})
                    samples.setdefault(name, []).append((wall, workers, cpu))
                finally:
                    for worker in fleet:
                        worker.stop()
                    fleet = []
                    dest.stop()
    finally:
        for worker in fleet:
            worker.stop()
        redis.stop()
        source.stop()
        shutil.rmtree(work, ignore_errors=True)
    one = statistics.median(w for w, _, _ in samples["1 worker"])
    lines = ["%d images x 2 platforms (base %d MiB shared, %d MiB own per child), filter %s, "
             "median of %d; each worker --concurrency 1, -j 4." % (
                 args.images, args.base_mb, args.own_mb, args.filter, args.repeat), "",
             "| setup | wall s | vs 1 worker | CPU s (sync + workers) | workers that took "
             "jobs (last round) |", "|---|---|---|---|---|"]
    for name, *_rest in setups:
        wall = statistics.median(w for w, _, _ in samples[name])
        cpu = statistics.median(c for _, _, c in samples[name])
        lines.append("| %s | %.2f | %.2fx | %.2f | %s |" % (
            name, wall, one / wall, cpu, ", ".join(samples[name][-1][1])))
    publish("\n".join(lines), args.markdown)


if __name__ == "__main__":
    main()
