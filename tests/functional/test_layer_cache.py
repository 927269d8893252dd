"""--layer-cache against a real docker-registry (0.4.17 B.16, with E.2 #6 bugs A and B
fixed), checked with `occystrap check` and skopeo.  The tests marked with the `cache`
fixture run twice: with an SQLite file and with `redis://` (a real redis-server), and
the proxy tests show several proxies sharing one Redis cache.

A second image sharing base layers with the first must not read, rewrite or upload
those layers: its tarball holds garbage in their place (with the right diff_ids in the
config), and the registry's own access log shows they were mounted, not uploaded.
"""
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from occystrap.cache import open_cache
from tests import imagebuilder as ib
from tests import peers
from tests.cli import REPO, occystrap

pytestmark = pytest.mark.functional

NORMALIZE = ("-f", "normalize-timestamps")


class LoggedRegistry(peers.Registry):
    """docker-registry with its access log on: the blob uploads it received."""

    def prepare(self):
        super().prepare()
        with open(self.config_path) as f:
            config = f.read().replace("accesslog: {disabled: true}",
                                      "accesslog: {disabled: false}")
        with open(self.config_path, "w") as f:
            f.write(config)

    def requests(self):
        with open(self.log_path, errors="replace") as f:
            return re.findall(r'"(GET|HEAD|PUT|POST|PATCH|DELETE) (\S+) HTTP', f.read())

    def uploaded(self, repository):
        """Digests committed by upload (PUT ...?digest=) into repository."""
        return {urllib.request.unquote(m.group(1))
                for method, path in self.requests() if method == "PUT"
                and path.startswith("/v2/%s/blobs/uploads/" % repository)
                for m in [re.search(r"[?&]digest=([^&]+)", path)] if m}

    def mounted(self, repository):
        return {urllib.request.unquote(m.group(1))
                for method, path in self.requests() if method == "POST"
                and path.startswith("/v2/%s/blobs/uploads/?mount=" % repository)
                for m in [re.search(r"mount=([^&]+)", path)]}

    def fetched(self, repository):
        return {path.rsplit("/", 1)[1] for method, path in self.requests()
                if method == "GET" and path.startswith("/v2/%s/blobs/sha256:" % repository)}


@pytest.fixture(params=["sqlite", "redis"])
def cache(request, tmp_path):
    """--layer-cache's value: a new SQLite file, or the test's (emptied) Redis."""
    if request.param == "redis":
        return request.getfixturevalue("redis_url")
    return str(tmp_path / "layers.db")


@pytest.fixture(scope="module")
def logged_registry():
    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry is not installed")
    daemon = LoggedRegistry().start()
    yield daemon
    daemon.stop()


# -- helpers ---------------------------------------------------------------------------

def base_layers(tag):
    """Two base layers unique to this test run (old mtimes: normalize changes them)."""
    stamp = ("%s %s" % (tag, time.time())).encode()
    return [ib.layer([("dir", "etc"), ("file", "etc/base-id", stamp),
                      ("file", "etc/motd", b"hello\n" * 50)]),
            ib.layer([("dir", "usr"), ("file", "usr/lib.so", stamp * 200, {"mode": 0o755})])]


def app_layer(name):
    return ib.layer([("dir", "app"), ("file", "app/%s" % name, name.encode() * 10)])


def garbage_for(layers, keep):
    """The same image, but every layer not in keep replaced by bytes that are no tar:
    the config still names the real diff_ids, so only a run that never reads those
    layers can succeed."""
    diff_ids = ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]
    stored = [data if i in keep else b"not a tar, never read " * 40
              for i, data in enumerate(layers)]
    return stored, {"rootfs": {"type": "layers", "diff_ids": diff_ids}}


def push(registry, tar, repository, cache, *extra, check=True):
    return occystrap("--insecure", "--layer-cache", cache, *extra, "process", "tar://%s" % tar,
                     "registry://%s/%s" % (registry.url, repository), *NORMALIZE, check=check)


def counts(stderr):
    found = re.findall(r"Layer cache: (\d+) hits, (\d+) misses, (\d+) stored", stderr)
    assert len(found) == 1, stderr
    return tuple(int(n) for n in found[0])


def manifest(registry, repository, skopeo):
    return skopeo.inspect("docker://%s/%s" % (registry.url, repository), raw=True,
                          tls_verify=False)


def config(registry, repository, skopeo):
    return skopeo.inspect("docker://%s/%s" % (registry.url, repository), config=True,
                          tls_verify=False)


def blob_diff_id(registry, repository, digest):
    """sha256 of the decompressed blob, as the registry serves it."""
    name = repository.split(":")[0]
    with urllib.request.urlopen("http://%s/v2/%s/blobs/%s" % (registry.url, name, digest)) as r:
        data = r.read()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return "sha256:" + hashlib.sha256(gzip.decompress(data)).hexdigest()


def assert_valid(registry, repository, skopeo):
    """`occystrap check` passes, and every config diff_id is its blob's real diff_id
    (bug B: 0.4.17 kept the input ids on cache hits)."""
    ref = "registry://%s/%s" % (registry.url, repository)
    occystrap("--insecure", "check", ref, check=True)
    raw = manifest(registry, repository, skopeo)
    inspected = skopeo.inspect("docker://%s/%s" % (registry.url, repository), tls_verify=False)
    assert inspected["Layers"] == [layer["digest"] for layer in raw["layers"]]
    diff_ids = config(registry, repository, skopeo)["rootfs"]["diff_ids"]
    assert diff_ids == [blob_diff_id(registry, repository, layer["digest"])
                        for layer in raw["layers"]]
    return raw, diff_ids


def rows(cache):
    """The cache's entries, oldest first, whichever backend keeps them."""
    with open_cache(str(cache)) as opened:
        return opened.entries()


def kind(cache):
    return "redis" if str(cache).startswith("redis://") else "sqlite"


# -- tests -----------------------------------------------------------------------------

def test_shared_layers_are_not_read_rewritten_or_uploaded(logged_registry, skopeo, tmp_path,
                                                          cache):
    """Two `occystrap process` runs (two processes) share the cache."""
    registry, lc = logged_registry, "lc/%s-" % kind(cache)
    base = base_layers("shared-" + kind(cache))
    first = base + [app_layer("one")]
    info = ib.build_image(tmp_path / "one.tar", first, repotag="example.com/lc/one:1")
    proc = push(registry, tmp_path / "one.tar", lc + "one:1", cache)
    assert counts(proc.stderr) == (0, 3, 3)
    raw_one, ids_one = assert_valid(registry, lc + "one:1", skopeo)
    assert ids_one[:2] != info["diff_ids"][:2]          # normalize did change the layers

    second = base + [app_layer("two")]
    stored, cfg = garbage_for(second, keep={2})
    ib.build_image(tmp_path / "two.tar", stored, repotag="example.com/lc/two:1", config=cfg)
    # without the cache the garbage is read, and refused
    proc = occystrap("--insecure", "process", "tar://%s" % (tmp_path / "two.tar"),
                     "registry://%s/%snocache:1" % (registry.url, lc), *NORMALIZE, check=False)
    assert "layer 0" in proc.stderr
    proc = push(registry, tmp_path / "two.tar", lc + "two:1", cache)
    assert counts(proc.stderr) == (2, 1, 1)
    assert "verified OK" in proc.stderr
    raw_two, ids_two = assert_valid(registry, lc + "two:1", skopeo)
    shared = {layer["digest"] for layer in raw_one["layers"][:2]}
    assert [layer["digest"] for layer in raw_two["layers"][:2]] == \
        [layer["digest"] for layer in raw_one["layers"][:2]]
    assert ids_two[:2] == ids_one[:2]                   # output diff_ids, not the input's
    # the registry's side: the shared blobs were mounted from lc/one, never uploaded
    assert registry.mounted(lc + "two") == shared
    assert registry.uploaded(lc + "two") == {raw_two["layers"][2]["digest"],
                                             raw_two["config"]["digest"]}
    assert shared <= registry.uploaded(lc + "one")


def test_registry_source_layers_are_not_fetched_on_hits(logged_registry, skopeo, tmp_path):
    registry, cache = logged_registry, tmp_path / "layers.db"
    ib.build_image(tmp_path / "src.tar", base_layers("regsrc") + [app_layer("src")])
    occystrap("--insecure", "process", "tar://%s" % (tmp_path / "src.tar"),
               "registry://%s/lc/src:1" % registry.url, check=True)
    src = "registry://%s/lc/src:1" % registry.url
    before = registry.fetched("lc/src")
    proc = occystrap("--insecure", "--layer-cache", cache, "process", src,
                     "registry://%s/lc/dst1:1" % registry.url, *NORMALIZE, check=True)
    assert counts(proc.stderr) == (0, 3, 3)
    fetched = registry.fetched("lc/src") - before
    layer_digests = {layer["digest"] for layer in manifest(registry, "lc/src:1",
                                                          skopeo)["layers"]}
    assert layer_digests <= fetched
    before = registry.fetched("lc/src")
    proc = occystrap("--insecure", "--layer-cache", cache, "process", src,
                     "registry://%s/lc/dst2:1" % registry.url, *NORMALIZE, check=True)
    assert counts(proc.stderr) == (3, 0, 0)
    assert not (registry.fetched("lc/src") - before) & layer_digests
    assert_valid(registry, "lc/dst2:1", skopeo)
    assert manifest(registry, "lc/dst2:1", skopeo)["layers"] == \
        manifest(registry, "lc/dst1:1", skopeo)["layers"]


def test_out_of_order_uploads_map_each_input_to_its_own_blob(registry, skopeo, tmp_path):
    cache = tmp_path / "layers.db"
    big = ib.layer([("file", "big.bin", os.urandom(24 << 20))])     # slow to gzip and send
    layers = [big] + [app_layer("small%d" % n) for n in range(3)]
    info = ib.build_image(tmp_path / "ooo.tar", layers)
    proc = push(registry, tmp_path / "ooo.tar", "lc/ooo:1", cache, "-j", "4")
    assert counts(proc.stderr) == (0, 4, 4)
    raw, diff_ids = assert_valid(registry, "lc/ooo:1", skopeo)
    entries = {row["input_diff_id"]: row for row in rows(cache)}
    # the big first layer finished last: completion order differed from manifest order
    assert max(entries.values(), key=lambda r: r["created"])["input_diff_id"] == \
        info["diff_ids"][0]
    for index, input_id in enumerate(info["diff_ids"]):      # bug A: no FIFO pairing
        assert entries[input_id]["digest"] == raw["layers"][index]["digest"]
        assert entries[input_id]["diff_id"] == diff_ids[index]
    proc = push(registry, tmp_path / "ooo.tar", "lc/ooo2:1", cache, "-j", "4")
    assert counts(proc.stderr) == (4, 0, 0)
    raw2, _ = assert_valid(registry, "lc/ooo2:1", skopeo)
    assert raw2["layers"] == raw["layers"]


def test_other_filters_or_compression_miss(registry, skopeo, tmp_path):
    cache = tmp_path / "layers.db"
    ib.build_image(tmp_path / "img.tar", base_layers("miss") + [app_layer("miss")])
    tar = tmp_path / "img.tar"
    assert counts(push(registry, tar, "lc/miss:1", cache).stderr) == (0, 3, 3)
    variants = [("lc/miss-zstd:1", ("--compression", "zstd"), ()),
                ("lc/miss-level:1", ("--compression-level", "3"), ()),
                ("lc/miss-exclude:1", (), ("-f", "exclude:pattern=app/*"))]
    for repository, options, filters in variants:
        proc = occystrap("--insecure", "--layer-cache", cache, *options, "process",
                         "tar://%s" % tar, "registry://%s/%s" % (registry.url, repository),
                         *NORMALIZE, *filters, check=True)
        assert counts(proc.stderr) == (0, 3, 3), repository
        occystrap("--insecure", "check", "registry://%s/%s" % (registry.url, repository),
                  check=True)
    zstd = manifest(registry, "lc/miss-zstd:1", skopeo)
    assert {layer["mediaType"] for layer in zstd["layers"]} == \
        {"application/vnd.oci.image.layer.v1.tar+zstd"}
    # the first variant is still there: the same settings hit
    assert counts(push(registry, tar, "lc/miss-again:1", cache).stderr) == (3, 0, 0)
    assert_valid(registry, "lc/miss-again:1", skopeo)
    assert len(rows(cache)) == 12


def test_concurrent_processes_share_one_cache(registry, skopeo, tmp_path, cache):
    base = base_layers("concurrent-" + kind(cache))
    names = ["%s-c%d" % (kind(cache), n) for n in range(3)]
    for name in names:
        ib.build_image(tmp_path / ("%s.tar" % name), base + [app_layer(name)])
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "occystrap", "--insecure", "--layer-cache", str(cache),
         "-j", "4", "process", "tar://%s" % (tmp_path / ("%s.tar" % name)),
         "registry://%s/lc/%s:1" % (registry.url, name), *NORMALIZE],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=env, cwd=REPO) for name in names]
    try:
        outputs = [proc.communicate(timeout=120)[1] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
    for proc, stderr in zip(procs, outputs):
        assert proc.returncode == 0, stderr
        assert "WARNING" not in stderr and "verified OK" in stderr, stderr
        hits, misses, stored = counts(stderr)
        assert hits + misses == 3 and stored == misses
    for name in names:
        assert_valid(registry, "lc/%s:1" % name, skopeo)
    assert len({row["input_diff_id"] for row in rows(cache)}) == 5    # 2 shared + 3 apps
    ib.build_image(tmp_path / "c9.tar", base + [app_layer("c9")])
    assert counts(push(registry, tmp_path / "c9.tar", "lc/%s-c9:1" % kind(cache),
                       cache).stderr) == (2, 1, 1)


@pytest.mark.parametrize("content, says", [
    (b"\x00garbage\xff" * 700, "not an SQLite database"),
    (json.dumps({"version": 1, "layers": {}}).encode(), "0.4.17 JSON cache"),
], ids=["garbage", "json-0.4.17"])
def test_unusable_cache_file_warns_and_the_push_succeeds(registry, skopeo, tmp_path,
                                                         content, says):
    cache = tmp_path / "layers.db"
    cache.write_bytes(content)
    ib.build_image(tmp_path / "img.tar", base_layers("bad-" + says) + [app_layer("bad")])
    proc = push(registry, tmp_path / "img.tar", "lc/badcache:1", cache)
    assert "WARNING" in proc.stderr and says in proc.stderr
    assert "running without a layer cache" in proc.stderr
    assert "Layer cache:" not in proc.stderr and "verified OK" in proc.stderr
    assert cache.read_bytes() == content                     # never overwritten
    assert_valid(registry, "lc/badcache:1", skopeo)


def test_unreachable_redis_warns_and_the_push_succeeds(registry, skopeo, tmp_path):
    cache = "redis://:s3cret@127.0.0.1:%d/0" % peers.free_port()     # nothing listens
    ib.build_image(tmp_path / "img.tar", base_layers("redis-down") + [app_layer("down")])
    proc = push(registry, tmp_path / "img.tar", "lc/redis-down:1", cache)
    assert proc.stderr.count("WARNING") == 1, proc.stderr
    assert "running without a layer cache" in proc.stderr and "s3cret" not in proc.stderr
    assert "Layer cache:" not in proc.stderr and "verified OK" in proc.stderr
    assert_valid(registry, "lc/redis-down:1", skopeo)


def test_proxy_uses_the_layer_cache(registry, skopeo, tmp_path):
    from tests.functional.test_proxy import ProxyProcess
    cache = tmp_path / "layers.db"
    base = base_layers("proxy")
    for name in ("p1", "p2"):
        ib.build_image(tmp_path / ("%s.tar" % name), base + [app_layer(name)],
                       repotag="example.com/lc/%s:1" % name)
    proxy = ProxyProcess(registry.url, options=("--layer-cache", str(cache))).start()
    try:
        for name in ("p1", "p2"):
            skopeo("copy", "--dest-tls-verify=false", "docker-archive:%s"
                   % (tmp_path / ("%s.tar" % name)), "docker://%s/lc/%s:1" % (proxy.url, name))
    finally:
        assert proxy.stop() == 0
    found = re.findall(r"Layer cache: (\d+) hits, (\d+) misses, (\d+) stored", proxy.stderr)
    assert found == [("0", "3", "3"), ("2", "1", "1")], proxy.stderr
    assert "--layer-cache is not used" not in proxy.stderr
    _, ids1 = assert_valid(registry, "lc/p1:1", skopeo)
    _, ids2 = assert_valid(registry, "lc/p2:1", skopeo)
    assert ids1[:2] == ids2[:2]


# -- several proxies, one Redis cache --------------------------------------------------

def proxy_counts(proxy):
    return [tuple(int(n) for n in found) for found in re.findall(
        r"Layer cache: (\d+) hits, (\d+) misses, (\d+) stored", proxy.stderr)]


def start_proxies(downstream, redis_url, *extra):
    """Two proxies (A, B) in front of one downstream, sharing the Redis cache."""
    from tests.functional.test_proxy import ProxyProcess
    started = []
    try:
        for _ in range(2):
            started.append(ProxyProcess(downstream, *extra,
                                        options=("--layer-cache", redis_url)).start())
    except BaseException:
        stop_proxies(started)
        raise
    return started


def stop_proxies(proxies):
    return [proxy.stop() for proxy in proxies]


def assert_shared_base(registry, skopeo, first, second):
    """second's two base layers are first's blobs, mounted from first's repository (not
    uploaded); both images are valid."""
    raw1, ids1 = assert_valid(registry, first + ":1", skopeo)
    raw2, ids2 = assert_valid(registry, second + ":1", skopeo)
    shared = [layer["digest"] for layer in raw1["layers"][:2]]
    assert [layer["digest"] for layer in raw2["layers"][:2]] == shared
    assert ids2[:2] == ids1[:2] and ids2[2] != ids1[2]
    assert registry.mounted(second) == set(shared)
    assert registry.uploaded(second) == {raw2["layers"][2]["digest"], raw2["config"]["digest"]}
    return shared


def test_proxies_share_rewritten_layers_through_redis(logged_registry, skopeo, redis_url,
                                                       tmp_path):
    """A base layer proxy A rewrote is reused, not rewritten again, by proxy B."""
    registry, base = logged_registry, base_layers("proxies")
    for name in ("rp1", "rp2"):
        ib.build_image(tmp_path / ("%s.tar" % name), base + [app_layer(name)],
                       repotag="example.com/lc/%s:1" % name)
    proxies = start_proxies(registry.url, redis_url)
    try:
        for proxy, name in zip(proxies, ("rp1", "rp2")):
            skopeo("copy", "--dest-tls-verify=false", "docker-archive:%s"
                   % (tmp_path / ("%s.tar" % name)), "docker://%s/lc/%s:1" % (proxy.url, name))
    finally:
        assert stop_proxies(proxies) == [0, 0]
    a, b = proxies
    assert proxy_counts(a) == [(0, 3, 3)], a.stderr
    assert proxy_counts(b) == [(2, 1, 1)], b.stderr
    assert "WARNING" not in a.stderr + b.stderr
    shared = assert_shared_base(registry, skopeo, "lc/rp1", "lc/rp2")
    entries = rows(redis_url)
    assert len(entries) == 4                            # 2 base layers + 2 app layers
    assert {e["origin"] for e in entries if e["digest"] in shared} == \
        {"%s/lc/rp1" % registry.url}


def test_pull_through_proxies_share_rewritten_layers_through_redis(logged_registry, skopeo,
                                                                    redis_url, tmp_path):
    """Pull-through copies use the cache too: proxy B neither fetches the base layers
    from the upstream nor rewrites or uploads them."""
    registry, base = logged_registry, base_layers("pull-through")
    upstream = LoggedRegistry().start()
    try:
        for name in ("pu1", "pu2"):
            ib.build_image(tmp_path / ("%s.tar" % name), base + [app_layer(name)])
            occystrap("--insecure", "process", "tar://%s" % (tmp_path / ("%s.tar" % name)),
                       "registry://%s/lc/%s:1" % (upstream.url, name), check=True)
        upstream_layers = [layer["digest"] for layer in manifest(upstream, "lc/pu2:1",
                                                                 skopeo)["layers"]]
        proxies = start_proxies(registry.url, redis_url, "-u", upstream.url)
        try:
            for proxy, name in zip(proxies, ("pu1", "pu2")):
                skopeo("copy", "--src-tls-verify=false", "docker://%s/lc/%s:1"
                       % (proxy.url, name), "dir:%s" % (tmp_path / name))
        finally:
            assert stop_proxies(proxies) == [0, 0]
        fetched = upstream.fetched("lc/pu2")
    finally:
        upstream.stop()
    a, b = proxies
    assert proxy_counts(a) == [(0, 3, 3)], a.stderr
    assert proxy_counts(b) == [(2, 1, 1)], b.stderr
    assert not fetched & set(upstream_layers[:2]) and upstream_layers[2] in fetched
    shared = assert_shared_base(registry, skopeo, "lc/pu1", "lc/pu2")
    # the clients got the filtered images, shared base included
    for name in ("pu1", "pu2"):
        pulled = json.loads((tmp_path / name / "manifest.json").read_text())
        assert [layer["digest"] for layer in pulled["layers"]][:2] == shared
