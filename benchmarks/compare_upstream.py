#!/usr/bin/env python3
"""Time occystrap 0.4.17 (PyPI) side by side with this checkout's occystrap.

    python benchmarks/compare_upstream.py [IMAGE.tar] [--repeat 3]
        [--markdown FILE] [--only SUBSTRING] [--skip-upstream] [--skip-new]

Upstream runs from its own venv, ``benchmarks/.venv-upstream`` (created on
first use with ``python3 -m venv`` + ``pip install occystrap==0.4.17``). The
new tool runs as ``python -m occystrap`` with this interpreter and the
checkout on PYTHONPATH, pinned to one core (``taskset -c 0``) and to two
cores; upstream runs unpinned. Both use their default options (verification
on). Every run writes into a fresh temp dir that is deleted afterwards.

For each scenario we report the median wall time of ``--repeat`` runs and the
peak RSS of the child (``os.wait4`` rusage). A run that exits non-zero is
shown as FAILED. The input defaults to benchmarks/data/image-500.tar and is
generated with benchmarks/corpus.py when missing.
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
VENV = os.path.join(HERE, ".venv-upstream")
UPSTREAM_VERSION = "0.4.17"
DEFAULT_IMAGE = os.path.join(HERE, "data", "image-500.tar")

# (label, argv template); {IN} is the input tarball, {OUT} a fresh temp dir.
SCENARIOS = [
    ("process tar->tar",
     ["process", "tar://{IN}", "tar://{OUT}/out.tar"]),
    ("process -f normalize-timestamps",
     ["process", "tar://{IN}", "tar://{OUT}/out.tar",
      "-f", "normalize-timestamps"]),
    ("process -f exclude:pattern=*.pyc",
     ["process", "tar://{IN}", "tar://{OUT}/out.tar",
      "-f", "exclude:pattern=*.pyc"]),
    ("check (full)",
     ["check", "tar://{IN}"]),
    ("process tar->dir expand",
     ["process", "tar://{IN}", "dir://{OUT}/out?expand=true"]),
]

FAILED = "FAILED"


# --------------------------------------------------------------------------
# The two tools

def ensure_upstream():
    """Create the upstream venv on first use; return its occystrap path."""
    exe = os.path.join(VENV, "bin", "occystrap")
    if os.path.exists(exe):
        return exe
    print("creating %s with occystrap==%s ..." % (VENV, UPSTREAM_VERSION))
    subprocess.run(["python3", "-m", "venv", VENV], check=True)
    subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q",
                    "occystrap==%s" % UPSTREAM_VERSION], check=True)
    return exe


def compile_tree():
    """Users get .pyc files from pip install and the upstream venv has them; compile ours
    too, or each run of a checkout under PYTHONDONTWRITEBYTECODE=1 recompiles it."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "occystrap")],
                   check=True)


def new_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [REPO] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def cpu_sets():
    """CPU lists for the pinned runs: one core and (up to) two cores."""
    cpus = sorted(os.sched_getaffinity(0))
    return [("1 core", cpus[:1]), ("2 cores", cpus[:2])]


def tools(skip_upstream, skip_new):
    """[(column label, argv prefix, env)] for every measured configuration."""
    out = []
    if not skip_upstream:
        out.append(("upstream", [ensure_upstream()], None))
    if not skip_new:
        for label, cpus in cpu_sets():
            prefix = ["taskset", "-c", ",".join(map(str, cpus)),
                      sys.executable, "-m", "occystrap"]
            out.append(("new " + label, prefix, new_env()))
    return out


# --------------------------------------------------------------------------
# Measuring

def run_once(argv, env, tmp_root):
    """Run argv once in a fresh dir; return (seconds, peak RSS MiB, error)."""
    out_dir = tempfile.mkdtemp(prefix="bench-", dir=tmp_root)
    argv = [a.replace("{OUT}", out_dir) for a in argv]
    with tempfile.TemporaryFile() as log:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log,
                                env=env, cwd=REPO)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        shutil.rmtree(out_dir, ignore_errors=True)
        if proc.returncode != 0:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace").strip()
            return seconds, None, tail.splitlines()[-3:] or ["(no output)"]
    return seconds, usage.ru_maxrss / 1024.0, None


def measure(configs, args, image, repeat, tmp_root):
    """{column: (median wall time, peak RSS)} or (None, None) for a failed tool.

    Runs are interleaved (A B C A B C ...) and os.sync() runs before each one, outside
    the timing, so no tool inherits another's pending disk writes: on a real disk the
    write-back of one run's output otherwise slows whichever run comes next."""
    times, peak, failed = {}, {}, set()
    for _ in range(repeat):
        for column, prefix, env in configs:
            if column in failed:
                continue
            argv = prefix + [a.replace("{IN}", image) for a in args]
            os.sync()
            seconds, rss, error = run_once(argv, env, tmp_root)
            if error:
                print("    %s exited non-zero:\n      %s" % (
                    " ".join(argv[:4]), "\n      ".join(error)))
                failed.add(column)
                continue
            times.setdefault(column, []).append(seconds)
            peak[column] = max(peak.get(column, 0.0), rss)
    return {column: (None, None) if column in failed
            else (statistics.median(times[column]), peak[column])
            for column, _, _ in configs}


# --------------------------------------------------------------------------
# Reporting

def fmt_time(value):
    return FAILED if value is None else "%.2f" % value


def fmt_ratio(up, new):
    if up is None or new is None or new == 0:
        return "-"
    return "%.1fx" % (up / new)


def table(results, columns):
    """Header + rows: times, ratios against upstream, RSS per column."""
    header = ["scenario"]
    header += ["%s s" % c for c in columns]
    news = [c for c in columns if c != "upstream"]
    if "upstream" in columns:
        header += ["ratio (%s)" % c for c in news]
    header += ["RSS MiB %s" % c for c in columns]
    rows = []
    for label, cells in results:
        row = [label] + [fmt_time(cells[c][0]) for c in columns]
        if "upstream" in columns:
            row += [fmt_ratio(cells["upstream"][0], cells[c][0])
                    for c in news]
        row += ["-" if cells[c][1] is None else "%.0f" % cells[c][1]
                for c in columns]
        rows.append(row)
    return header, rows


def print_table(header, rows):
    widths = [max(len(r[i]) for r in [header] + rows)
              for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)))


def write_markdown(path, header, rows, image, repeat):
    with open(path, "w") as f:
        f.write("Input: `%s` (%.0f MiB), median of %d runs.\n\n" % (
            os.path.basename(image), os.path.getsize(image) / 2**20, repeat))
        f.write("| " + " | ".join(header) + " |\n")
        f.write("|" + "---|" * len(header) + "\n")
        for r in rows:
            f.write("| " + " | ".join(r) + " |\n")


# --------------------------------------------------------------------------

def ensure_image(path, size_mb):
    if os.path.exists(path):
        return
    sys.path.insert(0, HERE)
    import corpus
    print("generating %s (%d MiB) ..." % (path, size_mb))
    corpus.generate(path, size_mb, 4, 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", nargs="?", default=DEFAULT_IMAGE)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", metavar="FILE")
    parser.add_argument("--size-mb", type=int, default=500,
                        help="corpus size if IMAGE must be generated")
    parser.add_argument("--only", help="run scenarios containing this text")
    parser.add_argument("--tmp-dir", help="where output dirs are created")
    parser.add_argument("--skip-upstream", action="store_true")
    parser.add_argument("--skip-new", action="store_true")
    args = parser.parse_args(argv)

    image = os.path.abspath(args.image)
    ensure_image(image, args.size_mb)
    compile_tree()
    configs = tools(args.skip_upstream, args.skip_new)
    columns = [label for label, _, _ in configs]
    scenarios = [s for s in SCENARIOS if not args.only or args.only in s[0]]

    results = []
    for label, scenario_args in scenarios:
        print("%s ..." % label, flush=True)
        cells = measure(configs, scenario_args, image, args.repeat, args.tmp_dir)
        for column in columns:
            print("  %-10s %s s" % (column, fmt_time(cells[column][0])), flush=True)
        results.append((label, cells))

    header, rows = table(results, columns)
    print()
    print_table(header, rows)
    if args.markdown:
        write_markdown(args.markdown, header, rows, image, args.repeat)


if __name__ == "__main__":
    main()
