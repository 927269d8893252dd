#!/usr/bin/env python3
"""Push and pull through a real docker-registry: this checkout vs occystrap 0.4.17 vs skopeo.

    python benchmarks/compare_registry.py [IMAGE.tar] [--repeat 2] [--markdown FILE]

Every run gets a fresh docker-registry (blobs on tmpfs) on a new port, so no tool benefits
from blobs an earlier run left behind (skopeo's blob-info cache keys on the registry
address, so it cannot reuse them either).  Scenarios:

  push+normalize   tar -> registry with -f normalize-timestamps (skopeo cannot
                   normalize: its column is a plain docker-archive -> docker:// copy)
  push             tar -> registry, no filter
  pull             registry -> tar (the image pushed by the same tool beforehand)

Reported: median wall time of --repeat runs, peak RSS of the child, ratios.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

import peers  # noqa: E402
from compare_upstream import (DEFAULT_IMAGE, compile_tree, ensure_image,  # noqa: E402
                              ensure_upstream, new_env)
from output import publish  # noqa: E402


def run(argv, env=None):
    """(seconds, peak RSS MiB) of one child process; raises on a non-zero exit."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError("%s failed:\n%s" % (" ".join(argv[:4]), stderr[-2000:]))
    return seconds, usage.ru_maxrss / 1024


def commands(tool, image, registry, out):
    ref = "%s/bench/%s:1" % (registry, tool)
    if tool == "skopeo":
        base = ["skopeo", "--tmpdir", out]
        return {"push+normalize": base + ["copy", "--dest-tls-verify=false",
                                          "docker-archive:%s" % image, "docker://" + ref],
                "push": base + ["copy", "--dest-tls-verify=false",
                                "docker-archive:%s" % image, "docker://" + ref],
                "pull": base + ["copy", "--src-tls-verify=false", "docker://" + ref,
                                "docker-archive:%s/pulled.tar" % out]}
    exe = [sys.executable, "-m", "occystrap"] if tool == "new" else [ensure_upstream()]
    return {"push+normalize": exe + ["--insecure", "process", "tar://" + image,
                                     "registry://" + ref, "-f", "normalize-timestamps"],
            "push": exe + ["--insecure", "process", "tar://" + image, "registry://" + ref],
            "pull": exe + ["--insecure", "process", "registry://" + ref,
                           "tar://%s/pulled.tar" % out]}


def _registry():
    """A fresh docker-registry storing blobs on tmpfs (its in-memory driver is far too
    slow for 500 MB pushes, and a disk would measure the disk)."""
    registry = peers.Registry(storage="filesystem")
    if os.path.isdir("/dev/shm"):
        shutil.rmtree(registry.dir, ignore_errors=True)
        registry.dir = tempfile.mkdtemp(prefix="oc-registry-", dir="/dev/shm")
    return registry.start()


def measure(tool, scenario, image, repeat):
    """(median seconds, peak RSS) of `repeat` runs, each against a fresh registry."""
    results = []
    for _ in range(repeat):
        tmp = tempfile.mkdtemp(prefix="bench-reg-", dir="/dev/shm" if os.path.isdir(
            "/dev/shm") else None)
        registry = _registry()
        try:
            env = new_env() if tool == "new" else dict(os.environ)
            cmds = commands(tool, image, registry.url, tmp)
            if scenario == "pull":
                run(cmds["push"], env)
            result = run(cmds[scenario], env)
        finally:
            registry.stop()
            shutil.rmtree(registry.dir, ignore_errors=True)
            shutil.rmtree(tmp, ignore_errors=True)
        results.append(result)
    return (statistics.median(r[0] for r in results), max(r[1] for r in results))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", default=DEFAULT_IMAGE)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--markdown")
    parser.add_argument("--tools", default="new,upstream,skopeo")
    args = parser.parse_args(argv)
    ensure_image(args.image, 500)
    compile_tree()
    tools = args.tools.split(",")
    rows = []
    for scenario in ("push+normalize", "push", "pull"):
        cells = {}
        for tool in tools:
            print("%s: %s ..." % (scenario, tool), flush=True)
            try:
                cells[tool] = measure(tool, scenario, args.image, args.repeat)
            except RuntimeError as exc:
                print(exc)
                cells[tool] = None
        rows.append((scenario, cells))
    header = ["scenario"] + ["%s s (RSS MiB)" % t for t in tools] + \
        ["%s/new" % t for t in tools if t != "new"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for scenario, cells in rows:
        row = [scenario]
        for tool in tools:
            cell = cells.get(tool)
            row.append("FAILED" if cell is None else "%.2f (%.0f)" % cell)
        for tool in tools:
            if tool != "new":
                a, b = cells.get(tool), cells.get("new")
                row.append("-" if not a or not b else "%.1fx" % (a[0] / b[0]))
        lines.append("| " + " | ".join(row) + " |")
    publish("\n".join(lines), args.markdown)


if __name__ == "__main__":
    main()
