#!/usr/bin/env python3
"""`occystrap sync` against `skopeo sync` on the same image set.

    python benchmarks/compare_sync.py [--images 20] [--base-mb 16] [--own-mb 2] [--repeat 3]
        [--markdown FILE]

The set: IMAGES tags of one repository (bench/app:t01 ...), each an OCI index of two
platforms (linux/amd64, linux/arm64).  Every child has the same base layer (BASE MiB,
one blob shared by all 2 x IMAGES children) and a layer of its own (OWN MiB); all data
is random, so gzip cannot shrink it.  It is pushed once into a source docker-registry
(blobs on tmpfs).  Each measured run mirrors the whole repository into a fresh
destination registry; the rerun goes again into the same one, where everything is
already there.  Reported: median wall time, child CPU and peak RSS, and for occystrap
the layers it uploaded (each shared blob once) from its `-O json` summary; the peak
RSS of occystrap syncing a quarter of the set shows it does not grow with the number
of images.
"""
import argparse
import json
import os
import random
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

import imagebuilder as ib  # noqa: E402
from compare_imageset import ShmRegistry  # noqa: E402
from compare_upstream import compile_tree, new_env  # noqa: E402
from multiarch_corpus import OCI_MANIFEST, as_oci, get_manifest, index_document, \
    put_manifest  # noqa: E402
from output import publish  # noqa: E402

SHM = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
SRC_REPO = "bench/app"


def _random_layer(name, size_mb, seed):
    rng = random.Random(seed)
    return ib.layer([("file", name, rng.randbytes(size_mb << 20), {"mtime": ib.EPOCH})])


def build_set(registry, images, base_mb, own_mb, work):
    """Push the set into registry; return the tags."""
    from occystrap.api import copy_uris
    base = _random_layer("base.bin", base_mb, "base")
    tags = []
    for number in range(1, images + 1):
        tag = "t%02d" % number
        children = []
        for arch in ("amd64", "arm64"):
            path = os.path.join(work, "%s-%s.tar" % (tag, arch))
            own = _random_layer("%s-%s.bin" % (tag, arch), own_mb, tag + arch)
            ib.build_image(path, [base, own], config={"architecture": arch})
            copy_uris("tar://" + path, "registry://%s/%s:%s-%s" % (registry, SRC_REPO, tag,
                                                                    arch),
                      options={"insecure": True}, verify=False)
            os.unlink(path)
            _type, body = get_manifest(registry, SRC_REPO, "%s-%s" % (tag, arch))
            body = as_oci(body)
            put_manifest(registry, SRC_REPO, "%s-%s" % (tag, arch), body, OCI_MANIFEST)
            children.append((arch, OCI_MANIFEST, body))
        index_type, index = index_document(children)
        put_manifest(registry, SRC_REPO, tag, index, index_type)
        tags.append(tag)
    return tags


def run_child(argv, env):
    """(wall s, CPU s, peak RSS MiB, stdout) of one child; RuntimeError on failure."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        if os.waitstatus_to_exitcode(status):
            err.seek(0)
            raise RuntimeError("%s failed:\n%s" % (" ".join(argv[:6]),
                                                    err.read().decode()[-2000:]))
        out.seek(0)
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, out.read()


def occystrap_argv(spec, out):
    return [sys.executable, "-m", "occystrap", "--insecure", "-J", "4", "-O", "json",
            "--platform", "all", "sync", spec]


def write_spec(path, src, dst, pattern):
    with open(path, "w") as f:
        f.write("sync:\n  - source: registry://%s/%s\n    destination: registry://%s/mirror/app\n"
                "    tags: ['%s']\n" % (src, SRC_REPO, dst, pattern))


def skopeo_argv(src, dst, tmp):
    return ["skopeo", "--tmpdir", tmp, "sync", "--all", "--src", "docker", "--dest", "docker",
            "--src-tls-verify=false", "--dest-tls-verify=false", "--scoped=false",
            "%s/%s" % (src, SRC_REPO), "%s/mirror" % dst]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--base-mb", type=int, default=16)
    parser.add_argument("--own-mb", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown")
    parser.add_argument("--build", metavar="HOST", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build:          # in a child, so this process stays small: a child's peak
        work = tempfile.mkdtemp(prefix="bench-sync-build-", dir=SHM)    # RSS counts it
        try:
            build_set(args.build, args.images, args.base_mb, args.own_mb, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    compile_tree()
    env = new_env()
    work = tempfile.mkdtemp(prefix="bench-sync-", dir=SHM)
    source = ShmRegistry(SHM).start()
    samples = {}
    try:
        print("pushing %d two-platform images ..." % args.images, flush=True)
        subprocess.run([sys.executable, os.path.abspath(__file__), "--build", source.url,
                        "--images", str(args.images), "--base-mb", str(args.base_mb),
                        "--own-mb", str(args.own_mb)], check=True, env=env, cwd=REPO)
        for round_ in range(args.repeat):
            for tool in ("occystrap", "skopeo"):
                print("[%d/%d] %s first run and rerun ..." % (round_ + 1, args.repeat, tool),
                      flush=True)
                dest = ShmRegistry(SHM).start()
                tmp = tempfile.mkdtemp(dir=work)
                try:
                    if tool == "occystrap":
                        spec = os.path.join(tmp, "spec.yaml")
                        write_spec(spec, source.url, dest.url, "t[0-9]+")
                        argv_ = occystrap_argv(spec, tmp)
                    else:
                        argv_ = skopeo_argv(source.url, dest.url, tmp)
                    for phase in ("first", "rerun"):
                        result = run_child(argv_, env)
                        samples.setdefault((tool, phase), []).append(result)
                        if tool == "occystrap":
                            samples.setdefault(("summary", phase), []).append(
                                json.loads(result[3])["summary"])
                finally:
                    dest.stop()
                    shutil.rmtree(tmp, ignore_errors=True)
            dest = ShmRegistry(SHM).start()         # RSS with a quarter of the images
            try:
                spec = os.path.join(work, "quarter.yaml")
                write_spec(spec, source.url, dest.url,
                           "t0[1-%d]" % max(1, min(9, args.images // 4)))
                samples.setdefault(("occystrap", "quarter"), []).append(
                    run_child(occystrap_argv(spec, work), env))
            finally:
                dest.stop()
    finally:
        source.stop()
        shutil.rmtree(work, ignore_errors=True)
    lines = ["%d images x 2 platforms; base layer %d MiB shared by all, %d MiB of its own "
             "per child; median of %d." % (args.images, args.base_mb, args.own_mb,
                                          args.repeat), "",
             "| run | wall s | CPU s | peak RSS MiB |", "|---|---|---|---|"]
    for key in [("occystrap", "first"), ("skopeo", "first"), ("occystrap", "rerun"),
                ("skopeo", "rerun"), ("occystrap", "quarter")]:
        runs = samples.get(key, [])
        if runs:
            lines.append("| %s %s | %.2f | %.2f | %.0f |" % (
                key[0], key[1] if key[1] != "quarter" else "first, a quarter of the set",
                statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs),
                max(r[2] for r in runs)))
    first = {tool: statistics.median(r[0] for r in samples[(tool, "first")])
             for tool in ("occystrap", "skopeo")}
    firsts, reruns = samples[("summary", "first")], samples[("summary", "rerun")]
    lines += ["", "skopeo sync / occystrap sync, first run: %.2fx" % (first["skopeo"] /
                                                                     first["occystrap"]),
              "occystrap rerun: %.2f s for %d images (%s)" % (
                  statistics.median(r[0] for r in samples[("occystrap", "rerun")]),
                  args.images, ", ".join("%d %s" % (reruns[-1].get(k, 0), k)
                                         for k in ("copied", "unchanged", "failed"))),
              "occystrap first run: %d layers uploaded, %d reused (%d children, 2 layers "
              "each; the shared base once)" % (firsts[-1]["layers_uploaded"],
                                               firsts[-1]["layers_reused"],
                                               2 * args.images)]
    publish("\n".join(lines), args.markdown)


if __name__ == "__main__":
    main()
