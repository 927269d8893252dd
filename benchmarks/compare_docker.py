#!/usr/bin/env python3
"""docker:// and dockerpush:// from a real dockerd: this checkout vs occystrap 0.4.17 vs
skopeo (docker-daemon:).

    python benchmarks/compare_docker.py [--size-mb 128] [--repeat 3] [--markdown FILE]

A dockerd of its own (tests/peers.py) loads a corpus image (benchmarks/corpus.py) once.
Each measured run copies it out of the daemon:

  to tar    docker:// (the daemon's `docker save` stream) and dockerpush:// (the
            daemon pushes into occystrap's embedded registry) -> tar:// on tmpfs;
            0.4.17's docker://; `skopeo copy docker-daemon:... docker-archive:...`
  to registry  the same sources -> a fresh docker-registry (blobs on tmpfs) per run;
            `skopeo copy docker-daemon:... docker://...`

Reported per configuration: the median wall time of --repeat runs, the child's CPU
(wait4 rusage), the CPU dockerd and its containerd spent during the run
(/proc/PID/stat), and the peak RSS of the child.  The daemon's own CPU is where
dockerpush:// pays: a push makes dockerd gzip every layer, which `docker save` never
does.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, HERE)

import peers  # noqa: E402
from compare_imageset import ShmRegistry, cpu_of, run_child  # noqa: E402
from compare_upstream import compile_tree, ensure_image, ensure_upstream, new_env  # noqa: E402
from output import publish  # noqa: E402

IMAGE = None        # the name the corpus image was loaded as (corpus.py sets it)
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None


def daemon_cpu(dockerd):
    """CPU seconds dockerd and its containerd have used so far."""
    pids = [dockerd.proc.pid]
    try:
        with open(os.path.join(dockerd.dir, "exec", "containerd", "containerd.pid")) as f:
            pids.append(int(f.read().strip()))
    except (OSError, ValueError):
        pass
    return sum(cpu_of(pid) for pid in pids)


def configs(dockerd):
    """name -> (needs a registry, argv(out dir, registry host or None))."""
    sock = dockerd.socket
    new = [sys.executable, "-m", "occystrap", "--insecure"]
    up = [ensure_upstream()]            # (0.4.17 takes no --insecure for a daemon)
    skopeo = ["skopeo", "--override-os", "linux"]
    daemon = "docker-daemon:%s" % IMAGE
    host = "--src-daemon-host=unix://" + sock      # skopeo 1.9 ignores DOCKER_HOST

    def reg(host):
        return "registry://%s/bench/out:1" % host
    return {
        "docker:// -> tar (new)": (False, lambda o, r: new + [
            "process", "docker://%s?socket=%s" % (IMAGE, sock), "tar://%s/o.tar" % o]),
        "dockerpush:// -> tar (new)": (False, lambda o, r: new + [
            "process", "dockerpush://%s?socket=%s" % (IMAGE, sock), "tar://%s/o.tar" % o]),
        "docker:// -> tar (0.4.17)": (False, lambda o, r: up + [
            "process", "docker://%s?socket=%s" % (IMAGE, sock), "tar://%s/o.tar" % o]),
        "docker-daemon: -> tar (skopeo)": (False, lambda o, r: skopeo + [
            "--tmpdir", o, "copy", host, daemon, "docker-archive:%s/o.tar" % o]),
        "docker:// -> registry (new)": (True, lambda o, r: new + [
            "process", "docker://%s?socket=%s" % (IMAGE, sock), reg(r)]),
        "dockerpush:// -> registry (new)": (True, lambda o, r: new + [
            "process", "dockerpush://%s?socket=%s" % (IMAGE, sock), reg(r)]),
        "docker-daemon: -> registry (skopeo)": (True, lambda o, r: skopeo + [
            "--tmpdir", o, "copy", host, "--dest-tls-verify=false", daemon,
            "docker://%s/bench/out:1" % r]),
    }


def measure(dockerd, repeat):
    """{name: (wall, CPU, daemon CPU, RSS)} medians (RSS: peak), runs interleaved."""
    ours = new_env()
    theirs = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}   # 0.4.17's own
    table = configs(dockerd)
    samples = {name: [] for name in table}
    for round_ in range(repeat):
        for name, (needs_registry, argv) in table.items():
            print("[%d/%d] %s ..." % (round_ + 1, repeat, name), flush=True)
            out = tempfile.mkdtemp(prefix="bench-docker-", dir=SHM)
            registry = ShmRegistry(SHM or tempfile.gettempdir()).start() \
                if needs_registry else None
            try:
                before = daemon_cpu(dockerd)
                wall, cpu, rss = run_child(argv(out, registry.url if registry else None),
                                           theirs if "0.4.17" in name else ours)
                samples[name].append((wall, cpu, daemon_cpu(dockerd) - before, rss))
            except RuntimeError as exc:
                print("  failed: %s" % str(exc).splitlines()[0])
            finally:
                if registry is not None:
                    registry.stop()
                shutil.rmtree(out, ignore_errors=True)
    return {name: (statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs),
                   statistics.median(s[2] for s in runs), max(s[3] for s in runs))
            for name, runs in samples.items() if runs}


def report(results, size_mb, repeat):
    lines = ["Image: %d MiB corpus (benchmarks/corpus.py) loaded into dockerd; median of %d "
             "runs." % (size_mb, repeat), "",
             "| configuration | wall s | CPU s | dockerd CPU s | peak RSS MiB |",
             "|---|---|---|---|---|"]
    for name, (wall, cpu, dcpu, rss) in results.items():
        lines.append("| %s | %.2f | %.2f | %.2f | %.0f |" % (name, wall, cpu, dcpu, rss))
    pairs = [("dockerpush:// / docker:// -> tar, wall", "dockerpush:// -> tar (new)",
              "docker:// -> tar (new)"),
             ("dockerpush:// / docker:// -> registry, wall", "dockerpush:// -> registry (new)",
              "docker:// -> registry (new)"),
             ("0.4.17 / new docker:// -> tar, wall", "docker:// -> tar (0.4.17)",
              "docker:// -> tar (new)"),
             ("skopeo / new -> tar, wall", "docker-daemon: -> tar (skopeo)",
              "docker:// -> tar (new)"),
             ("skopeo / new docker:// -> registry, wall",
              "docker-daemon: -> registry (skopeo)", "docker:// -> registry (new)")]
    lines += ["", "| comparison | value |", "|---|---|"]
    for label, a, b in pairs:
        if a in results and b in results:
            lines.append("| %s | %.2fx |" % (label, results[a][0] / results[b][0]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown")
    args = parser.parse_args(argv)
    image = os.path.join(HERE, "data", "image-%d.tar" % args.size_mb)
    ensure_image(image, args.size_mb)
    compile_tree()
    global IMAGE
    with peers.Dockerd() as dockerd:
        loaded = dockerd.docker("load", "-i", image).stdout
        IMAGE = loaded.strip().splitlines()[-1].split(": ", 1)[-1]
        results = measure(dockerd, args.repeat)
    publish(report(results, args.size_mb, args.repeat), args.markdown)


if __name__ == "__main__":
    main()
