"""Peak memory on layers built to blow it up (issue 8): `occystrap check` must refuse
them with a clean error while its peak RSS stays under 128 MiB.

Each layer is written to disk in pieces (the test process never holds it) and wrapped in
a docker-save tarball; `occystrap check tar://...` runs as a child that writes its own
peak RSS (VmHWM of /proc/self/status) as it exits.  Not os.wait4's ru_maxrss: Linux
carries the forking parent's RSS into the child's maxrss across exec, so a child of a
big pytest process would report pytest's size.
"""
import gzip
import hashlib
import os
import subprocess
import sys

import pytest

from tests import imagebuilder, tarfuzz

pytestmark = [pytest.mark.native, pytest.mark.slow]

LIMIT = 128 * 1024 * 1024
JUST_UNDER = tarfuzz.CAP - 1


def _chained_longnames(write, count=150):
    # Each GNU L header is just under the cap; chained, they are one member's names.
    block = tarfuzz.ext(b"L", b"n" * (JUST_UNDER - 1) + b"\0")
    for _ in range(count):
        write(block)
    write(tarfuzz.member(b"victim", b"x") + tarfuzz.END)


def _chained_pax(write, count=150):
    record = tarfuzz.pax_records([(b"comment", b"c" * (JUST_UNDER - 40))])
    block = tarfuzz.ext(b"x", record)
    for _ in range(count):
        write(block)
    write(tarfuzz.member(b"victim", b"x") + tarfuzz.END)


def _sparse_blocks(write, count=400000):
    # An old GNU sparse member whose map goes on for 400k extension blocks (200 MiB).
    head = bytearray(tarfuzz.sparse_member(b"sparse", [(0, b"a")] * 4, 4)[:512])
    head[482] = 1                           # isextended: the map goes on
    tarfuzz.fix_checksum(head, 0)
    write(bytes(head))
    more = bytearray(512)
    more[0:12] = tarfuzz.octal(0, 12)
    more[12:24] = tarfuzz.octal(0, 12)
    more[504] = 1
    chunk = bytes(more) * 2048
    for _ in range(count // 2048):
        write(chunk)
    last = bytearray(more)
    last[504] = 0
    write(bytes(last) + tarfuzz.pad(b"aaaa") + tarfuzz.END)


LAYERS = {"chained-longnames": _chained_longnames, "chained-pax": _chained_pax,
          "sparse-400k-blocks": _sparse_blocks}


def _write_layer(path, builder, compress):
    """Write the layer; return its diff_id (the digest of the uncompressed tar)."""
    digest = hashlib.sha256()
    opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if compress else (
        lambda p: open(p, "wb"))
    with opener(path) as f:
        def write(piece):
            digest.update(piece)
            f.write(piece)
        builder(write)
    return "sha256:" + digest.hexdigest()


def _run_check(image):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=root)     # this checkout's occystrap
    report = image + ".status"
    proc = subprocess.Popen([sys.executable, "-c", _PEAK_REPORTING, report,
                             "check", "tar://" + image],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root, env=env)
    # Read both pipes without deadlock, then reap the child ourselves for its rusage.
    out, err = _drain(proc)
    proc.stdout.close()
    proc.stderr.close()
    proc.wait()
    with open(report) as status:
        peak = [line for line in status if line.startswith("VmHWM:")][0]
    return proc.returncode, out.decode(), err.decode(), int(peak.split()[1]) * 1024


# `python -m occystrap ARGS` that saves /proc/self/status to argv[1] as it exits.
_PEAK_REPORTING = """\
import atexit, runpy, shutil, sys
report = sys.argv.pop(1)
atexit.register(lambda: shutil.copyfile("/proc/self/status", report))
sys.argv[0] = "occystrap"
runpy.run_module("occystrap", run_name="__main__", alter_sys=True)
"""


def _drain(proc):
    import threading
    chunks = {"out": [], "err": []}

    def pump(stream, key):
        for piece in iter(lambda: stream.read(65536), b""):
            chunks[key].append(piece)

    threads = [threading.Thread(target=pump, args=(proc.stdout, "out")),
               threading.Thread(target=pump, args=(proc.stderr, "err"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    return b"".join(chunks["out"]), b"".join(chunks["err"])


@pytest.mark.parametrize("compress", [False, True], ids=["tar", "tar.gz"])
@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_hostile_layer_is_refused_in_bounded_memory(tmp_path, kind, compress):
    layer = tmp_path / ("layer.tar.gz" if compress else "layer.tar")
    diff_id = _write_layer(layer, LAYERS[kind], compress)
    image = tmp_path / "image.tar"
    # A gzip layer goes in as it is (occystrap sniffs the compression); the config
    # names the uncompressed digest, so the only error left is the layer's.
    imagebuilder.build_image(str(image), [str(layer)],
                             config={"rootfs": {"type": "layers", "diff_ids": [diff_id]}})
    os.unlink(layer)
    code, out, err, peak = _run_check(str(image))
    assert "Traceback" not in err, err[-2000:]
    assert peak < LIMIT, "peak RSS %.1f MiB (limit %d MiB)\n%s" % (
        peak / 1048576, LIMIT >> 20, out[-1000:])
    assert code == 1, (out, err)
    assert "Errors:" in out and "[tar-format]" in out, out
