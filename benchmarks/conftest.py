"""Fixtures for the pytest-benchmark suite (not part of the normal test run).

Run from the repository root:

    python -m pytest benchmarks -p no:cacheprovider --benchmark-only

The normal run (``python -m pytest``) only collects ``tests/`` (testpaths), and
the files here are named ``bench_*.py`` so that even ``pytest benchmarks``
would not pick them up by pytest's default ``test_*.py`` rule: the
``pytest_collect_file`` hook below collects them explicitly.

Fixtures:

* ``impl``: the twin modules (``.tarstream``, ``.rewrite``, ``.globset``) of
  one implementation, parametrized over "cython" and "python"; the cython
  case is skipped when the extensions are not built.
* ``corpus``: a deterministic 64 MiB docker-save image generated once with
  benchmarks/corpus.py into benchmarks/data/ (reused when present).
* ``small_corpus``: a small (~19 MiB) header-dense image: 12k tiny
  files, where the per-member cost of the pure-Python twin dominates.
* ``corpus_layers`` / ``small_corpus_layers``: the uncompressed layers of
  those images, held in memory (bytes), in manifest order.
"""
import importlib
import json
import os
import random
import sys
import tarfile

import pytest

from occystrap import _native

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DATA = os.path.join(HERE, "data")

CORPUS_MB = 64
CORPUS_LAYERS = 4
CORPUS_SEED = 1
SMALL_FILES = 12000             # members of the header-dense layer

TWINS = ["cython", "python"]


def pytest_collect_file(file_path, parent):
    """Collect bench_*.py in this directory as test modules.

    A file named on the command line is already collected by pytest itself (initial
    paths skip the python_files rule); collecting it here too would run it twice."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") \
            and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


class Twin:
    """The native modules of one implementation: .tarstream, .rewrite, .globset."""

    def __init__(self, name):
        self.name = name
        suffix = "" if name == "cython" else "_py"
        for module in ("tarstream", "rewrite", "globset"):
            setattr(self, module,
                    importlib.import_module("occystrap._native." + module + suffix))

    def __repr__(self):
        return "<Twin %s>" % self.name


@pytest.fixture(params=TWINS)
def impl(request):
    if request.param == "cython" and _native.IMPLEMENTATION != "cython":
        pytest.skip("Cython extensions not built (IMPLEMENTATION=%s)"
                    % _native.IMPLEMENTATION)
    return Twin(request.param)


@pytest.fixture(scope="session")
def native_only():
    """Skip unless the compiled core is what occystrap uses."""
    if _native.IMPLEMENTATION != "cython":
        pytest.skip("end-to-end benchmarks need the Cython extensions")


def _atomic_generate(path, build):
    """Create ``path`` with ``build(tmp_path)`` unless it exists (rename at the end)."""
    if os.path.exists(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        build(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _import_corpus():
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    import corpus
    return corpus


@pytest.fixture(scope="session")
def corpus():
    """Path of the deterministic 64 MiB benchmark image (benchmarks/corpus.py)."""
    path = os.path.join(DATA, "image-%d.tar" % CORPUS_MB)
    gen = _import_corpus()
    return _atomic_generate(
        path, lambda tmp: gen.generate(tmp, CORPUS_MB, CORPUS_LAYERS, CORPUS_SEED))


def _small_files_layer(seed=1):
    """Entries of a header-dense layer: nested dirs, many tiny files, some links."""
    from tests import imagebuilder as ib
    rng = random.Random(seed)
    entries = []
    dirs = []
    for i in range(SMALL_FILES // 20):
        parent = rng.choice(dirs) if dirs and rng.random() < 0.7 else "usr/lib/py"
        d = "%s/pkg%d" % (parent, i) if len(parent) < 180 else "usr/lib/py/pkg%d" % i
        dirs.append(d)
    seen = set()
    for d in ["usr", "usr/lib", "usr/lib/py"] + dirs:
        if d not in seen:
            seen.add(d)
            entries.append(("dir", d, {"mtime": ib.EPOCH - rng.randrange(10**7)}))
    for i in range(SMALL_FILES):
        d = rng.choice(dirs)
        ext = ".pyc" if i % 4 == 0 else ".py"
        size = min(int(rng.lognormvariate(6, 1.2)), 16384)
        attrs = {"mtime": ib.EPOCH - rng.randrange(10**7)}
        name = "%s/mod%d%s" % (d, i, ext)
        if i % 50 == 1:
            entries.append(("symlink", name, "mod%d.py" % (i - 1), attrs))
        else:
            entries.append(("file", name, rng.randbytes(size), attrs))
    return entries


@pytest.fixture(scope="session")
def small_corpus():
    """Path of a small header-dense image (one layer of ~12k tiny members)."""
    path = os.path.join(DATA, "image-smallfiles-%d.tar" % SMALL_FILES)

    def build(tmp):
        if REPO not in sys.path:
            sys.path.insert(0, REPO)
        from tests import imagebuilder as ib
        ib.build_image(tmp, [ib.layer(_small_files_layer())],
                       repotag="example.com/occystrap/bench-small:1.0")
    return _atomic_generate(path, build)


def read_layers(image):
    """The uncompressed layer tars of a legacy docker-save image, in manifest order."""
    with tarfile.open(image) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        return [tar.extractfile(name).read() for name in manifest[0]["Layers"]]


@pytest.fixture(scope="session")
def corpus_layers(corpus):
    return read_layers(corpus)


@pytest.fixture(scope="session")
def small_corpus_layers(small_corpus):
    return read_layers(small_corpus)


@pytest.fixture(scope="session")
def shm_tmp(tmp_path_factory):
    """A scratch dir on tmpfs (/dev/shm) when there is one, else pytest's tmp dir."""
    import shutil
    import tempfile
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        path = tempfile.mkdtemp(prefix="occystrap-bench-", dir="/dev/shm")
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield str(tmp_path_factory.mktemp("bench"))
