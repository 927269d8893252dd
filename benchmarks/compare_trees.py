#!/usr/bin/env python3
"""Single-image copies, one occystrap checkout against another (an A/B of a change).

    git worktree add /tmp/before COMMIT && (cd /tmp/before && python setup.py build_ext -i)
    python benchmarks/compare_trees.py --before /tmp/before [--after .] [--repeat 5]

Scenarios on the 500 MiB corpus (benchmarks/data/image-500.tar): tar -> tar with and
without normalize-timestamps, tar -> registry with normalize, registry -> registry and
registry -> tar, each registry fresh with its blobs on tmpfs; runs interleaved; the
median wall time and child CPU (wait4) of --repeat runs.
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
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, HERE)

from compare_imageset import ShmRegistry  # noqa: E402
from compare_upstream import DEFAULT_IMAGE, ensure_image  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--before", required=True)
parser.add_argument("--after", default=os.path.dirname(HERE))
parser.add_argument("--repeat", type=int, default=5)
ARGS = parser.parse_args()
IMG = DEFAULT_IMAGE
ensure_image(IMG, 500)
TREES = {"before": os.path.abspath(ARGS.before), "after": os.path.abspath(ARGS.after)}
N = ARGS.repeat



def run(tree, args):
    env = dict(os.environ, PYTHONPATH=tree)
    t = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "occystrap", "--insecure"] + args, env=env,
                         cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t
    err = p.stderr.read().decode()
    p.stderr.close()
    assert os.waitstatus_to_exitcode(status) == 0, err[-500:]
    return wall, usage.ru_utime + usage.ru_stime

src = ShmRegistry("/dev/shm").start()
subprocess.run([sys.executable, "-m", "occystrap", "--insecure", "process", "tar://" + IMG,
                "registry://%s/ab/src:1" % src.url], check=True, capture_output=True,
               cwd=TREES["after"], env=dict(os.environ, PYTHONPATH=TREES["after"]))
NORM = ["-f", "normalize-timestamps"]
scen = {
    "tar->tar normalize": lambda o, r: ["process", "tar://" + IMG, "tar://%s/o.tar" % o] + NORM,
    "tar->tar": lambda o, r: ["process", "tar://" + IMG, "tar://%s/o.tar" % o],
    "tar->registry normalize": lambda o, r: ["process", "tar://" + IMG,
                                             "registry://%s/ab/o:1" % r] + NORM,
    "registry->registry": lambda o, r: ["process", "registry://%s/ab/src:1" % src.url,
                                        "registry://%s/ab/o:1" % r],
    "registry->tar": lambda o, r: ["process", "registry://%s/ab/src:1" % src.url,
                                   "tar://%s/o.tar" % o],
}
res = {(s, t): [] for s in scen for t in TREES}
for i in range(N):
    for s, argv in scen.items():
        for t, tree in TREES.items():
            out = tempfile.mkdtemp(dir="/dev/shm")
            reg = ShmRegistry("/dev/shm").start() if s.split("->")[1].startswith("registry") \
                else None
            try:
                res[(s, t)].append(run(tree, argv(out, reg.url if reg else None)))
            finally:
                if reg:
                    reg.stop()
                shutil.rmtree(out)
src.stop()
print("| scenario | before s (CPU) | after s (CPU) | after/before |")
print("|---|---|---|---|")
for s in scen:
    b, a = [x[0] for x in res[(s, "before")]], [x[0] for x in res[(s, "after")]]
    bc, ac = [x[1] for x in res[(s, "before")]], [x[1] for x in res[(s, "after")]]
    print("| %s | %.2f (%.2f) | %.2f (%.2f) | %.2fx |"
          % (s, statistics.median(b), statistics.median(bc), statistics.median(a),
             statistics.median(ac), statistics.median(a) / statistics.median(b)))
