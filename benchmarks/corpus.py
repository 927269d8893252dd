#!/usr/bin/env python3
"""Generate a realistic, deterministic benchmark image (a docker-save tarball).

    python benchmarks/corpus.py --size-mb 500 --out benchmarks/data/image-500.tar
        [--layers 4] [--seed 1]

The image looks like a real application image so that benchmarks exercise
what real layers contain, not just one big file:

* real directory trees with deep nesting (a python site-packages tree,
  docs, a node_modules-like app tree ...), created parent-first like
  ``docker build`` diffs;
* many small text-like files (compressible, lognormal sizes) and .pyc files;
* some large random binaries (8-48 MB, incompressible);
* hardlinks, relative/absolute symlinks, a setuid binary, files with a
  ``security.capability`` xattr, a few PAX atime/ctime records;
* names longer than 100 and 255 characters and non-ASCII (UTF-8) names;
* later layers overwrite files, delete files and directories of lower layers
  with whiteouts, and the last one makes ``etc/conf.d`` opaque;
* varied mtimes.

Layers are uncompressed in the legacy layout, like ``docker save`` <= 24.
The same --size-mb/--layers/--seed always give the same bytes. Layers are
streamed to temp files next to the output, so memory stays small.
"""

import argparse
import os
import posixpath
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from tests import imagebuilder as ib  # noqa: E402

MiB = 1 << 20
REPOTAG = "example.com/occystrap/bench:1.0"
YEAR = 365 * 24 * 3600

# Per layer: (tree root for small files, dir for big binaries,
# share of the layer's budget going to small files).
LAYER_KINDS = [
    ("usr/lib/python3.11/site-packages", "usr/lib/x86_64-linux-gnu", 0.7),
    ("usr/share/doc", "opt/toolchain/bin", 0.3),
    ("app/node_modules", "opt/models", 0.4),
    ("srv/www/static", "srv/assets", 0.5),
]

WORDS = (
    "alpha beta gamma delta core util utils common http client server api "
    "parser lexer token tree node graph cache store index model view "
    "handler router config settings logging tests fixtures data schema "
    "codec buffer stream socket async worker queue pool thread crypto hash "
    "image layer blob digest manifest registry auth token session compat "
    "legacy vendor internal plugins extras contrib locale i18n templates"
).split()
NON_ASCII = ["données", "café", "naïve-résumé", "日本語", "ファイル",
             "Ελληνικά", "русский", "emoji-🚀", "straße-ümlaut", "中文目录"]
EXTENSIONS = [".py", ".txt", ".json", ".md", ".js", ".html", ".cfg", ".yaml",
              ".h", ".c"]

# A ~capability blob: VFS_CAP_REVISION_2 with cap_net_raw permitted.
CAP_NET_RAW = b"\x01\x00\x00\x02\x00\x20\x00\x00" + b"\x00" * 12


def header_size(path):
    """Tar header bytes for ``path``: PAX adds a record for long/UTF-8 names."""
    if len(path) >= 100 or not path.isascii():
        return 1536
    return 512


class RandomReader:
    """A file object yielding ``size`` deterministic pseudo-random bytes."""

    def __init__(self, rng, size):
        self.rng, self.left = rng, size

    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return self.rng.randbytes(n)


class Corpus:
    """Generates the entries of each layer; remembers paths across layers."""

    def __init__(self, seed, size_mb, nlayers):
        self.seed, self.nlayers = seed, nlayers
        self.layer_budget = size_mb * MiB // nlayers
        self.files = []     # plain files of lower layers (whiteout targets)
        self.dirs = []      # directories of lower layers (whiteout targets)
        self.pool = self._text_pool(random.Random(seed))

    @staticmethod
    def _text_pool(rng):
        """Lines of code-like text; files are random picks of these lines."""
        lines = []
        for _ in range(4000):
            indent = " " * (4 * rng.randrange(4))
            words = rng.choices(WORDS, k=rng.randrange(2, 10))
            lines.append("%s%s = %s(%s)  # %s\n" % (
                indent, words[0], words[1], ", ".join(words[2:]),
                rng.choice(WORDS)))
        return lines

    # -- per-layer state -----------------------------------------------------

    def layer_entries(self, index):
        """Yield the entry tuples of layer ``index`` (a generator)."""
        self.rng = random.Random("%d-%d" % (self.seed, index))
        self.emitted = set()
        self.new_files, self.new_dirs = [], []
        self.used = 0
        small_root, big_dir, small_share = LAYER_KINDS[index % len(LAYER_KINDS)]
        if index >= len(LAYER_KINDS):
            small_root += "-%d" % index
            big_dir += "-%d" % index

        if index == 0:
            yield from self.base_skeleton()
        else:
            yield from self.changes(index)
        yield from self.odd_names(index)
        yield from self.small_tree(small_root, self.layer_budget * small_share)
        yield from self.big_files(big_dir, self.layer_budget)
        self.files.extend(self.new_files)
        self.dirs.extend(self.new_dirs)

    def attrs(self, **extra):
        """Typical attributes: mtime within ~3 years, docker-style no uname."""
        rng = self.rng
        attrs = {"mtime": ib.EPOCH - rng.randrange(3 * YEAR),
                 "uname": "", "gname": ""}
        if rng.random() < 0.05:
            attrs.update(uid=33, gid=33)
        if rng.random() < 0.01:
            attrs["pax"] = {"atime": "%d.25" % ib.EPOCH,
                            "ctime": "%d.5" % ib.EPOCH}
        attrs.update(extra)
        return attrs

    def ensure_dir(self, path, **extra):
        """Yield dir entries for ``path`` and any ancestor not yet emitted."""
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.emitted:
                self.emitted.add(d)
                self.used += header_size(d)
                mode = extra.get("mode", 0o755) if i == len(parts) else 0o755
                yield ("dir", d, self.attrs(mode=mode))

    def file(self, path, data, **extra):
        """Yield one regular file (bytes or (reader, size))."""
        size = len(data) if isinstance(data, bytes) else data[1]
        self.used += header_size(path) + size + (-size % 512)
        self.emitted.add(path)
        yield ("file", path, data, self.attrs(**extra))

    def text(self, size):
        lines, total = [], 0
        while total < size:
            line = self.rng.choice(self.pool)
            lines.append(line)
            total += len(line)
        return "".join(lines).encode()[:size]

    # -- content ---------------------------------------------------------------

    def base_skeleton(self):
        """Layer 0: an OS-like skeleton with the special files."""
        for d in ("bin", "etc", "usr/bin", "usr/sbin", "var/lib/dpkg",
                  "var/log", "root"):
            yield from self.ensure_dir(d)
        yield from self.ensure_dir("tmp", mode=0o1777)
        yield ("symlink", "lib64", "usr/lib64", self.attrs())
        yield from self.file("etc/os-release", b"ID=bench\nVERSION_ID=1\n")
        yield from self.file("usr/bin/passwd", self.text(30000), mode=0o4755)
        yield from self.file("usr/bin/ping", self.text(20000), mode=0o755,
                             xattrs={"security.capability": CAP_NET_RAW})
        yield from self.file("usr/bin/python3.11", self.text(60000),
                             mode=0o755)
        yield ("hardlink", "usr/bin/python3", "usr/bin/python3.11",
               self.attrs())
        yield ("symlink", "usr/bin/python", "python3", self.attrs())
        yield from self.ensure_dir("etc/conf.d")
        for i in range(20):
            yield from self.file("etc/conf.d/%02d-%s.conf" % (
                i, self.rng.choice(WORDS)), self.text(300))
        yield from self.ensure_dir("var/cache/apt/archives")
        for i in range(30):
            path = "var/cache/apt/archives/pkg%d.deb" % i
            yield from self.file(path, self.text(2000))
            self.new_files.append(path)
        self.new_dirs.append("var/cache/apt")

    def changes(self, index):
        """Later layers: overwrite, delete (whiteouts), opaque dir."""
        rng = self.rng
        last = index == self.nlayers - 1
        if last:
            yield from self.ensure_dir("etc/conf.d")
            yield ("opaque", "etc/conf.d", self.attrs())
            yield from self.file("etc/conf.d/00-only.conf", self.text(200))
        for path in self.take(self.files, 10):
            yield from self.ensure_dir(posixpath.dirname(path))
            yield from self.file(path, self.text(rng.randrange(100, 5000)))
        deleted = self.take(self.dirs, 2)
        for path in deleted:
            self.forget(path)
        deleted += self.take(self.files, 15)
        for path in deleted:
            yield from self.ensure_dir(posixpath.dirname(path))
            yield ("whiteout", path, self.attrs(mode=0o000))
            self.used += header_size(path)

    def take(self, paths, count):
        """Remove and return up to ``count`` random entries of ``paths``."""
        picked = []
        for _ in range(min(count, len(paths))):
            picked.append(paths.pop(self.rng.randrange(len(paths))))
        return picked

    def forget(self, path):
        """Drop whiteout candidates at or under a deleted path."""
        prefix = path + "/"
        self.files[:] = [p for p in self.files if not p.startswith(prefix)]
        self.dirs[:] = [p for p in self.dirs
                        if p != path and not p.startswith(prefix)]

    def odd_names(self, index):
        """Long (>100, >255 chars), non-ASCII names and long link targets."""
        rng = self.rng
        base = "opt/odd-%d" % index
        long_dir = base + "/" + "/".join(
            "%s-%s" % ("-".join(rng.choices(WORDS, k=8)), i)
            for i in range(4))
        yield from self.ensure_dir(long_dir)
        for i in range(10):
            name = "%s/%s-%d.txt" % (long_dir, "_".join(
                rng.choices(WORDS, k=20))[:110], i)
            yield from self.file(name, self.text(rng.randrange(50, 3000)))
        yield ("symlink", base + "/long-link", "/" + name, self.attrs())
        for word in NON_ASCII:
            d = "%s/%s" % (base, word)
            yield from self.ensure_dir(d)
            yield from self.file("%s/%s-%s.txt" % (d, word, rng.choice(WORDS)),
                                 self.text(500))
        self.new_dirs.append(base + "/" + NON_ASCII[0])

    def small_tree(self, root, budget):
        """Deeply nested directories of small text files and .pyc files."""
        rng = self.rng
        yield from self.ensure_dir(root)
        dirs, names = [root], set()
        limit = self.used + budget
        while self.used < limit:
            if rng.random() < 0.1:
                parent = dirs[-1] if rng.random() < 0.5 else rng.choice(dirs)
                if parent.count("/") < 14:
                    name = self.component(parent, names)
                    dirs.append(name)
                    yield from self.ensure_dir(name)
                    if rng.random() < 0.2:
                        self.new_dirs.append(name)
                continue
            d = dirs[-1] if rng.random() < 0.6 else rng.choice(dirs)
            yield from self.small_file(d, names)

    def component(self, parent, names):
        word = (self.rng.choice(NON_ASCII) if self.rng.random() < 0.02
                else self.rng.choice(WORDS))
        path = "%s/%s" % (parent, word)
        while path in names:
            path = "%s/%s%d" % (parent, word, self.rng.randrange(1000))
        names.add(path)
        return path

    def small_file(self, d, names):
        rng = self.rng
        ext = rng.choice(EXTENSIONS)
        path = self.component(d, names) + ext
        size = min(int(rng.lognormvariate(7.5, 1.4)), 1 << 20)
        yield from self.file(path, self.text(size))
        if rng.random() < 0.05:
            self.new_files.append(path)
        if ext == ".py":
            stem = posixpath.basename(path)[:-3]
            cache = d + "/__pycache__"
            yield from self.ensure_dir(cache)
            pyc = b"\xa7\r\r\n" + bytes(12) + self.rng.randbytes(size // 8) \
                + self.text(size // 3)
            yield from self.file("%s/%s.cpython-311.pyc" % (cache, stem), pyc)
        r = rng.random()
        if r < 0.01:
            yield ("hardlink", path + ".bak", path, self.attrs())
        elif r < 0.03:
            target = (posixpath.basename(path) if r < 0.02
                      else "/" + path)
            yield ("symlink", path + ".lnk", target, self.attrs())

    def big_files(self, d, layer_budget):
        """Large random binaries until the layer budget is used."""
        rng = self.rng
        yield from self.ensure_dir(d)
        i = 0
        while self.used < layer_budget - MiB:
            size = min(rng.randrange(8 * MiB, 48 * MiB),
                       layer_budget - self.used - 1024)
            path = "%s/lib%s-%d.so.%d" % (d, rng.choice(WORDS), i, i + 1)
            yield from self.file(path, (RandomReader(rng, size), size),
                                 mode=0o755)
            if i == 0:
                yield ("hardlink", path + ".hl", path, self.attrs())
            i += 1


def generate(out, size_mb, nlayers, seed):
    """Write the corpus image to ``out``; return (build_image info, sizes)."""
    corpus = Corpus(seed, size_mb, nlayers)
    outdir = os.path.dirname(os.path.abspath(out))
    os.makedirs(outdir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".corpus-") as tmp:
        paths, sizes = [], []
        for index in range(nlayers):
            path = os.path.join(tmp, "layer-%d.tar" % index)
            count = [0]

            def counted(entries):
                for entry in entries:
                    count[0] += 1
                    yield entry

            with open(path, "wb") as f:
                ib.write_layer(f, counted(corpus.layer_entries(index)))
            paths.append(path)
            sizes.append((os.path.getsize(path), count[0]))
        info = ib.build_image(out, paths, repotag=REPOTAG, layout="legacy")
    return info, sizes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--out", default="benchmarks/data/image-500.tar")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    start = time.monotonic()
    info, sizes = generate(args.out, args.size_mb, args.layers, args.seed)
    elapsed = time.monotonic() - start
    for i, ((size, count), diff_id) in enumerate(zip(sizes, info["diff_ids"])):
        print("layer %d: %7.1f MiB, %6d entries, %s" % (
            i, size / MiB, count, diff_id[:19]))
    print("wrote %s: %.1f MiB in %.1fs" % (
        args.out, os.path.getsize(args.out) / MiB, elapsed))


if __name__ == "__main__":
    main()
