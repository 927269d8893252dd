#!/usr/bin/env python3
"""Multi-platform copies through real docker-registries: occystrap vs skopeo.

    python benchmarks/compare_imageset.py [--size-mb 500] [--repeat 3]
        [--markdown FILE] [--tmp-dir /dev/shm] [--only exact,normalize,ocidir]
        [--index-format docker|oci] [--tree CHECKOUT]

The source is a two-platform image (benchmarks/multiarch_corpus.py: linux/amd64 and
linux/arm64, ~N MiB each, one small base layer shared) pushed once into a source
docker-registry.  Every measured run copies it into a fresh destination registry on a
new port (blobs on tmpfs), so no run reuses blobs of an earlier one and skopeo's
blob-info cache, which keys on the registry address, cannot skip uploads either.
Runs of the configurations are interleaved (A, B, C, A, B, C, ...).  --index-format
oci makes the source an OCI image index (default: a Docker manifest list, which
`skopeo copy --all` to oci: converts to an OCI index, a note in the output).  --tree
measures another occystrap checkout (e.g. an export of a branch under work).

Scenarios:

  exact      --platform all, no filter: the index and every blob copied byte-exact;
             occystrap vs `skopeo copy --all` (ratio skopeo/occystrap)
  normalize  --platform all -f normalize-timestamps (every child's layers rewritten)
             vs the sum of --platform linux/amd64 and --platform linux/arm64 runs,
             each into its own fresh registry (ratio all/sum, target <= 1.1); also
             CPU of exact vs normalize (exact must be far below)
  ocidir     registry -> ocidir://DIR:all, exact, vs `skopeo copy --all ... oci:DIR:all`
             (skipped when this tree's occystrap has no ocidir:// output); the layout's
             tag is checked to name the source index (skopeo converting it is a note)

Reported per configuration: the median of --repeat runs of the child's wall time, its
CPU (ru_utime + ru_stime from wait4) and the CPU both registries spent during the run
(/proc/PID/stat), and the peak RSS of the child over all runs.
"""
import argparse
import hashlib
import json
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
sys.path.insert(0, HERE)

import multiarch_corpus  # noqa: E402
import peers  # noqa: E402
from compare_upstream import compile_tree, new_env  # noqa: E402
from output import publish  # noqa: E402

DST_REPO = "bench/dst"
TAG = "all"
SCENARIOS = ("exact", "normalize", "ocidir")
UNKNOWN_OUTPUT = "Unknown output scheme"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class SkipScenario(Exception):
    """The tool under test cannot do this scenario (e.g. no ocidir:// yet)."""


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    with open("/proc/%s/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_of(pid):
    """user + system CPU seconds process pid has used so far."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class ShmRegistry(peers.Registry):
    """peers.Registry with its blobs on tmpfs: the in-memory driver is far too slow for
    500 MB pushes, and a disk would measure the disk.  (Setting `dir` before start()
    does not work: start() makes a new one.)"""

    def __init__(self, shm_root):
        super().__init__(storage="filesystem")
        self.shm_root = shm_root
        self.blob_dir = None

    def prepare(self):
        super().prepare()
        self.blob_dir = tempfile.mkdtemp(prefix="oc-registry-", dir=self.shm_root)
        with open(self.config_path) as f:
            config = f.read()
        old = "rootdirectory: %s" % os.path.join(self.dir, "data")
        if old not in config:
            raise RuntimeError("unexpected registry config:\n" + config)
        with open(self.config_path, "w") as f:
            f.write(config.replace(old, "rootdirectory: %s" % self.blob_dir))

    def stop(self):
        super().stop()
        if self.blob_dir is not None:
            shutil.rmtree(self.blob_dir, ignore_errors=True)
            self.blob_dir = None

    def cpu_seconds(self):
        """user + system CPU the registry process has used so far."""
        return cpu_of(self.proc.pid)


TREE = REPO        # the occystrap checkout measured (--tree)


def occystrap_env():
    """The environment of occystrap runs: TREE first on PYTHONPATH, no settings from the
    caller's environment that would change what is measured."""
    env = new_env()
    if TREE != REPO:
        env["PYTHONPATH"] = os.pathsep.join([TREE] + env["PYTHONPATH"].split(os.pathsep)[1:])
    for name in ("OCCYSTRAP_LAYER_CACHE", "OCCYSTRAP_PLATFORM"):
        env.pop(name, None)
    return env


def occystrap(platform, src, dst, filters=()):
    argv = [sys.executable, "-m", "occystrap", "--insecure", "--platform", platform,
            "process", src, dst]
    for spec in filters:
        argv += ["-f", spec]
    return argv


def skopeo(tmp, src, dst):
    return ["skopeo", "--tmpdir", tmp, "copy", "--all", "--src-tls-verify=false",
            "--dest-tls-verify=false", src, dst]


# Configurations: name -> (scenario, needs a destination registry, argv(src, dst_host, out))
def _configs():
    def reg(dst, platform="all"):
        return "registry://%s/%s:%s" % (dst, DST_REPO, TAG if platform == "all" else
                                         platform.split("/")[1])
    norm = ["normalize-timestamps"]
    return {
        "exact all (occystrap)": (
            "exact", True, lambda s, d, o: occystrap("all", "registry://" + s, reg(d))),
        "exact all (skopeo)": (
            "exact", True, lambda s, d, o: skopeo(o, "docker://" + s,
                                                  "docker://%s/%s:%s" % (d, DST_REPO, TAG))),
        "normalize all": (
            "normalize", True, lambda s, d, o: occystrap("all", "registry://" + s, reg(d),
                                                         norm)),
        "normalize linux/amd64": (
            "normalize", True, lambda s, d, o: occystrap(
                "linux/amd64", "registry://" + s, reg(d, "linux/amd64"), norm)),
        "normalize linux/arm64": (
            "normalize", True, lambda s, d, o: occystrap(
                "linux/arm64", "registry://" + s, reg(d, "linux/arm64"), norm)),
        "ocidir all (occystrap)": (
            "ocidir", False, lambda s, d, o: occystrap(
                "all", "registry://" + s, "ocidir://%s/layout:%s" % (o, TAG))),
        "ocidir all (skopeo)": (
            "ocidir", False, lambda s, d, o: skopeo(o, "docker://" + s,
                                                    "oci:%s/layout:%s" % (o, TAG))),
    }


def run_child(argv, env):
    """(wall s, CPU s, peak RSS MiB) of one child; raises SkipScenario / RuntimeError."""
    with tempfile.TemporaryFile() as log:
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=TREE, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace")[-2000:]
            if UNKNOWN_OUTPUT in tail:
                raise SkipScenario(tail.strip().splitlines()[-1])
            raise RuntimeError("%s failed (%d):\n%s" % (" ".join(argv[:8]), proc.returncode,
                                                         tail))
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def check_exact(name, dst, source_index_digest):
    """An exact copy must reproduce the source index byte for byte (checked untimed)."""
    _media_type, body = multiarch_corpus.get_manifest(dst, DST_REPO, TAG)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if digest != source_index_digest:
        print("  warning: %s: destination index %s != source %s"
              % (name, digest[:19], source_index_digest[:19]), flush=True)


def check_layout(name, out, source_index_digest):
    """The tag of an exact ocidir copy must name the source index's digest (untimed)."""
    with open(os.path.join(out, "layout", "index.json"), "rb") as f:
        entries = json.load(f).get("manifests", [])
    tagged = [e["digest"] for e in entries
              if e.get("annotations", {}).get("org.opencontainers.image.ref.name") == TAG]
    if tagged != [source_index_digest]:
        print("  %s: %s in the layout is %s, the source index is %s"
              % ("note" if "skopeo" in name else "warning", TAG,
                 ", ".join(d[:19] for d in tagged) or "missing", source_index_digest[:19]),
              flush=True)


def measure_once(name, config, source, tmp_root):
    """One run of configuration `name` against a fresh destination."""
    scenario, needs_registry, argv_of = config
    out = tempfile.mkdtemp(prefix="bench-imageset-", dir=tmp_root)
    dst = ShmRegistry(tmp_root).start() if needs_registry else None
    try:
        env = occystrap_env() if "skopeo" not in name else dict(os.environ)
        argv = argv_of(source["registry"].url + "/" + source["repo"] + ":" + TAG,
                       dst.url if dst else None, out)
        regs = [source["registry"]] + ([dst] if dst else [])
        before = sum(r.cpu_seconds() for r in regs)
        wall, cpu, rss = run_child(argv, env)
        registry_cpu = sum(r.cpu_seconds() for r in regs) - before
        if scenario == "exact":
            check_exact(name, dst.url, source["index_digest"])
        elif scenario == "ocidir":
            check_layout(name, out, source["index_digest"])
    finally:
        if dst is not None:
            dst.stop()
        shutil.rmtree(out, ignore_errors=True)
    return wall, cpu, rss, registry_cpu


def measure(names, configs, source, repeat, tmp_root):
    """{name: (median wall, median CPU, max RSS, median registry CPU) | "skipped: ..." |
    "FAILED"}; runs interleaved across configurations."""
    samples = {name: [] for name in names}
    status = {}
    for round_ in range(repeat):
        for name in names:
            if name in status:
                continue
            print("[%d/%d] %s ..." % (round_ + 1, repeat, name), flush=True)
            try:
                samples[name].append(measure_once(name, configs[name], source, tmp_root))
            except SkipScenario as exc:
                print("  skipped: %s" % exc, flush=True)
                status[name] = "skipped (%s)" % exc
            except RuntimeError as exc:
                print("  %s" % exc, flush=True)
                status[name] = "FAILED"
    results = {}
    for name in names:
        runs = samples[name]
        if name in status:
            results[name] = status[name]
        else:
            results[name] = (statistics.median(r[0] for r in runs),
                             statistics.median(r[1] for r in runs),
                             max(r[2] for r in runs),
                             statistics.median(r[3] for r in runs))
    return results


def ratio(a, b, fmt="%.2fx"):
    return fmt % (a / b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
        and b else "-"


def report(results, source, args):
    def cell(name, i):
        value = results.get(name)
        return value[i] if isinstance(value, tuple) else None

    lines = ["Image: 2 platforms x %d MiB (corpus seeds 1, 2, one shared base layer), "
             "%.1f MB stored (gzip), %s; median of %d runs, fresh destination per run."
             % (args.size_mb, source["bytes"] / 1e6, source["index_type"], args.repeat), "",
             "| configuration | wall s | CPU s (user+sys) | peak RSS MiB | registries CPU s |",
             "|---|---|---|---|---|"]
    for name, value in results.items():
        if isinstance(value, tuple):
            lines.append("| %s | %.2f | %.2f | %.0f | %.2f |" % ((name,) + value))
        else:
            lines.append("| %s | %s | | | |" % (name, value))
    lines += ["", "| comparison | value | what |", "|---|---|---|"]
    if "exact all (occystrap)" in results:
        lines.append("| exact: skopeo / occystrap, wall | %s | > 1 = occystrap faster |"
                     % ratio(cell("exact all (skopeo)", 0), cell("exact all (occystrap)", 0)))
        lines.append("| exact: skopeo / occystrap, CPU | %s | |"
                     % ratio(cell("exact all (skopeo)", 1), cell("exact all (occystrap)", 1)))
    if "normalize all" in results:
        one = [cell("normalize linux/%s" % a, 0) for a in ("amd64", "arm64")]
        one_cpu = [cell("normalize linux/%s" % a, 1) for a in ("amd64", "arm64")]
        total = sum(one) if None not in one else None
        total_cpu = sum(one_cpu) if None not in one_cpu else None
        lines.append("| normalize: all / (amd64 + arm64), wall | %s | target <= 1.1 |"
                     % ratio(cell("normalize all", 0), total))
        lines.append("| normalize: all / (amd64 + arm64), CPU | %s | |"
                     % ratio(cell("normalize all", 1), total_cpu))
    if "exact all (occystrap)" in results and "normalize all" in results:
        lines.append("| CPU exact / normalize (--platform all) | %s | must be far below 1 |"
                     % ratio(cell("exact all (occystrap)", 1), cell("normalize all", 1),
                             "%.3f"))
    if "ocidir all (occystrap)" in results:
        lines.append("| ocidir: skopeo / occystrap, wall | %s | > 1 = occystrap faster |"
                     % ratio(cell("ocidir all (skopeo)", 0), cell("ocidir all (occystrap)", 0)))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500, help="per platform")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--tmp-dir", default="/dev/shm" if os.path.isdir("/dev/shm")
                        else tempfile.gettempdir(),
                        help="registry blobs, ocidir outputs, skopeo's tmpdir")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help="comma-separated scenarios: %s" % ",".join(SCENARIOS))
    parser.add_argument("--index-format", choices=("docker", "oci"), default="docker",
                        help="source index: Docker manifest list (children as occystrap "
                             "pushes them) or OCI image index (children re-PUT as OCI)")
    parser.add_argument("--tree", default=REPO,
                        help="occystrap checkout to measure (default: this one; the source "
                             "image is always pushed with it too)")
    args = parser.parse_args(argv)
    global TREE
    TREE = os.path.abspath(args.tree)
    scenarios = args.only.split(",")
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error("unknown scenario(s): %s" % ", ".join(sorted(unknown)))
    if not peers.have("docker-registry") or not peers.have("skopeo"):
        sys.exit("needs docker-registry and skopeo on PATH")
    compile_tree()
    if TREE != REPO:
        subprocess.run([sys.executable, "-m", "compileall", "-q",
                        os.path.join(TREE, "occystrap")], check=True)
    configs = _configs()
    names = [name for name, config in configs.items() if config[0] in scenarios]

    src = ShmRegistry(args.tmp_dir).start()
    try:
        print("filling the source registry %s ..." % src.url, flush=True)
        info = multiarch_corpus.build_index(src.url, args.size_mb, env=occystrap_env(),
                                            tree=TREE, index_format=args.index_format)
        source = dict(info, registry=src)
        print("source %s: %s, %d + %d layers, %d shared" % (
            info["ref"], info["index_type"].rsplit(".", 2)[-2], len(info["layers"]["amd64"]),
            len(info["layers"]["arm64"]), len(info["shared"])), flush=True)
        results = measure(names, configs, source, args.repeat, args.tmp_dir)
    finally:
        src.stop()
    publish("\n".join(report(results, source, args)), args.markdown)


if __name__ == "__main__":
    main()
