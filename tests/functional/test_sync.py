"""`occystrap sync`: many images in one run, between two real docker-registries, with
skopeo as the judge of what arrived (docs/sync.md)."""
import hashlib
import json
import os
import signal
import re
import subprocess
import sys
import time

import pytest

import occystrap
from tests import imagebuilder as ib
from tests import peers
from tests.cli import REPO, on_terminal, occystrap as run_cli
from tests.multiarch import multiarch_fixture  # noqa: F401  (fixture `multiarch`)

pytestmark = pytest.mark.functional


def _push(tmp_path, registry, ref, tag_text):
    path = tmp_path / ("%s.tar" % ref.replace("/", "_").replace(":", "_"))
    layers = ib.sample_layers()[:1] + [ib.layer([("file", "id", tag_text.encode())])]
    ib.build_image(path, layers)
    run_cli("--insecure", "process", "tar://%s" % path, "registry://%s/%s" % (registry.url, ref),
            check=True)


@pytest.fixture(scope="module")
def source(registry, tmp_path_factory):
    """team/a:1, team/a:2, team/a:latest-dev, team/b:1.0 in the session registry."""
    tmp = tmp_path_factory.mktemp("sync-src")
    for ref in ("synced/team/a:1", "synced/team/a:2", "synced/team/a:latest-dev",
                "synced/team/b:1.0"):
        _push(tmp, registry, ref, ref)
    return registry


@pytest.fixture
def destination():
    with peers.Registry() as other:
        yield other


def _spec(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def _raw_digest(registry, ref):
    out = peers.skopeo("inspect", "--raw", "--tls-verify=false",
                       "docker://%s/%s" % (registry.url, ref)).stdout
    return "sha256:" + hashlib.sha256(out.encode()).hexdigest()


def _sync(spec, *args, check=True, options=()):
    """`occystrap --insecure -O json [options] sync SPEC [args]`: (process, report)."""
    proc = run_cli("--insecure", "-O", "json", *options, "sync", str(spec), *args,
                   check=check, timeout=300)
    return proc, json.loads(proc.stdout) if proc.stdout.strip() else None


def test_sync_copies_every_tag_then_finds_them_unchanged(source, destination, tmp_path):
    spec = _spec(tmp_path, "sync:\n  - source: registry://%s/synced/team/a\n"
                           "    destination: registry://%s/mirror/a\n"
                 % (source.url, destination.url))
    proc, report = _sync(spec)
    records = {r["source"].rsplit(":", 1)[1]: r for r in report["images"]}
    assert sorted(records) == ["1", "2", "latest-dev"]
    assert {r["status"] for r in records.values()} == {"copied"}
    for tag, record in records.items():
        assert record["destination"] == "registry://%s/mirror/a:%s" % (destination.url, tag)
        # unfiltered: byte-exact, the source's digest
        assert record["digest"] == _raw_digest(source, "synced/team/a:" + tag)
        assert _raw_digest(destination, "mirror/a:" + tag) == record["digest"]
    assert report["summary"]["copied"] == 3 and report["summary"]["failed"] == 0
    # the base layer the three tags share went up once (-J 3: all at the same time)
    assert report["summary"]["layers_uploaded"] == 4, report["summary"]
    assert report["summary"]["layers_reused"] == 2, report["summary"]
    started = time.monotonic()
    proc, again = _sync(spec)
    assert [r["status"] for r in again["images"]] == ["unchanged"] * 3
    assert time.monotonic() - started < 10
    assert "Sync: 3 images, 3 unchanged" in proc.stderr


def test_tag_rules_and_digestfile(source, destination, tmp_path):
    spec = _spec(tmp_path, "defaults:\n  tags: ['[0-9]+']\n"
                           "sync:\n  - source: registry://%s/synced/team/a\n"
                           "    destination: registry://%s/rules/a\n"
                 % (source.url, destination.url))
    digests = tmp_path / "digests.txt"
    _proc, report = _sync(spec, "--digestfile", str(digests), options=("-J", "2"))
    assert sorted(r["source"].rsplit(":", 1)[1] for r in report["images"]) == ["1", "2"]
    lines = sorted(digests.read_text().splitlines())
    assert lines == sorted("%s@%s" % (r["destination"], r["digest"]) for r in report["images"])


def test_dry_run_writes_nothing(source, destination, tmp_path):
    spec = _spec(tmp_path, "sync:\n  - source: registry://%s/synced/team/b\n"
                           "    destination: registry://%s/dry/b\n"
                 % (source.url, destination.url))
    proc, report = _sync(spec, "--dry-run")
    assert [r["status"] for r in report["images"]] == ["would copy"]
    listed = peers.skopeo("list-tags", "--tls-verify=false",
                          "docker://%s/dry/b" % destination.url, check=False)
    assert listed.returncode != 0 or json.loads(listed.stdout)["Tags"] == []


def test_a_failed_image_is_reported_and_stops_new_ones(source, destination, tmp_path):
    text = ("sync:\n  - source: registry://%s/synced/team/missing:1\n"
            "    destination: registry://%s/fail/missing:1\n"
            "  - source: registry://%s/synced/team/b:1.0\n"
            "    destination: registry://%s/fail/b:1.0\n"
            % (source.url, destination.url, source.url, destination.url))
    spec = _spec(tmp_path, text)
    proc, report = _sync(spec, check=False, options=("-J", "1"))     # one at a time
    assert proc.returncode == 1
    assert report["images"][0]["status"] == "failed"
    assert "not found" in report["images"][0]["error"].lower()
    assert report["summary"]["not_started"] == 1 and len(report["images"]) == 1
    proc, report = _sync(spec, "--keep-going", check=False, options=("-J", "1"))
    assert proc.returncode == 1
    assert [r["status"] for r in report["images"]] == ["failed", "copied"]


def test_filtered_sync_rewrites_each_image(source, destination, tmp_path):
    spec = _spec(tmp_path, "sync:\n  - source: registry://%s/synced/team/b\n"
                           "    destination: registry://%s/filtered/b\n"
                           "    filters: [normalize-timestamps]\n"
                 % (source.url, destination.url))
    _proc, report = _sync(spec)
    (record,) = report["images"]
    assert record["status"] == "copied"
    assert record["digest"] != _raw_digest(source, "synced/team/b:1.0")
    assert _raw_digest(destination, "filtered/b:1.0") == record["digest"]
    # the rewrite recorded its source and filters: a rerun finds it, without layer work
    _proc, again = _sync(spec)
    assert [(r["status"], r["digest"]) for r in again["images"]] == \
        [("unchanged", record["digest"])]
    # another filter option is another image
    other = _spec(tmp_path, spec.read_text().replace("[normalize-timestamps]",
                                                     "['normalize-timestamps:ts=7']"))
    _proc, changed = _sync(other)
    assert [r["status"] for r in changed["images"]] == ["copied"]


def test_library_call(source, destination):
    spec = {"sync": [{"source": "registry://%s/synced/team/b:1.0" % source.url,
                      "destination": "registry://%s/lib/b" % destination.url}]}
    report = occystrap.sync(spec, {"insecure": True})
    assert [r.status for r in report.images] == ["copied"]
    again = occystrap.sync(spec, {"insecure": True})
    assert [r.status for r in again.images] == ["unchanged"]


def test_one_client_per_registry_for_the_whole_run(source, destination, monkeypatch):
    """Every image of a run shares one connection pool (and one --rate-limit) per
    registry: two registries, two clients, however many images."""
    from occystrap.transports.registry import client as client_mod
    made = []
    original = client_mod.RegistryClient.__init__

    def counting(self, host, **kwargs):
        made.append((host, kwargs.get("limiter")))
        original(self, host, **kwargs)
    monkeypatch.setattr(client_mod.RegistryClient, "__init__", counting)
    report = occystrap.sync({"sync": [{"source": "registry://%s/synced/team/a" % source.url,
                                       "destination": "registry://%s/pool/a"
                                                      % destination.url}]},
                            {"insecure": True, "image_parallel": 3, "rate_limit": 1000})
    assert len(report.images) == 3 and not report.failed
    assert sorted(host for host, _ in made) == sorted([source.url, destination.url])
    assert made[0][1] is not None and made[0][1] is made[1][1]      # one limiter


def test_on_a_terminal_one_bar_counts_images_and_bytes(source, destination, tmp_path):
    spec = _spec(tmp_path, "sync:\n  - source: registry://%s/synced/team/a\n"
                           "    destination: registry://%s/tty/a\n"
                 % (source.url, destination.url))
    returncode, text, _out = on_terminal("--insecure", "sync", str(spec))
    assert returncode == 0, text
    assert "images:" in text and re.search(r"\d/3 \[", text), text      # the bar
    assert "uploaded" in text and text.count("copied ") >= 3, text
    assert "Sync: 3 images, 3 copied" in text


@pytest.mark.parametrize("entry, message", [
    ("    colour: blue\n", "entry 1: unknown key"),
    ("    tags: ['(']\n", "entry 1: "),
    ("    semver: '>=1.2 <2'\n", "entry 1: "),
])
def test_bad_spec_is_one_error_before_anything_is_copied(source, destination, tmp_path,
                                                         entry, message):
    text = ("sync:\n  - source: registry://%s/synced/team/b\n"
            "    destination: registry://%s/badspec/b\n" % (source.url, destination.url))
    spec = _spec(tmp_path, text + entry)
    proc = run_cli("--insecure", "sync", str(spec), check=False)
    line = [x for x in proc.stderr.splitlines() if x.startswith("Error: ")][0]
    assert line.startswith("Error: %s: %s" % (spec, message)), proc.stderr
    listed = peers.skopeo("list-tags", "--tls-verify=false",
                          "docker://%s/badspec/b" % destination.url, check=False)
    assert listed.returncode != 0 or json.loads(listed.stdout)["Tags"] == []


def test_sync_of_multi_platform_indexes_into_a_registry_and_a_layout(multiarch, destination,
                                                                    tmp_path):
    """platforms: all copies each index whole (byte-exact); an ocidir:// destination
    holds every tag; skopeo copies the results with every platform."""
    layout = tmp_path / "layout"
    spec = _spec(tmp_path, "defaults:\n  platforms: all\n  tags: [oci, three]\n"
                           "sync:\n  - source: registry://%s/%s\n"
                           "    destination: registry://%s/multi/img\n"
                           "  - source: registry://%s/%s\n"
                           "    destination: ocidir://%s\n"
                 % (multiarch.url, multiarch.repo, destination.url, multiarch.url,
                    multiarch.repo, layout))
    _proc, report = _sync(spec)
    assert sorted(r["status"] for r in report["images"]) == ["copied"] * 4
    for tag in ("oci", "three"):
        source = _raw_digest(multiarch.registry, "%s:%s" % (multiarch.repo, tag))
        assert _raw_digest(destination, "multi/img:" + tag) == source
        peers.skopeo("copy", "--all", "--src-tls-verify=false",
                     "docker://%s/multi/img:%s" % (destination.url, tag),
                     "oci:%s:%s" % (tmp_path / "check", tag))
        peers.skopeo("copy", "--all", "oci:%s:%s" % (layout, tag),
                     "oci:%s:%s" % (tmp_path / "check2", tag))
    _proc, again = _sync(spec)
    assert [r["status"] for r in again["images"]] == ["unchanged"] * 4


def test_sigterm_stops_a_sync_at_once_and_tags_nothing(source, destination, tmp_path):
    """SIGTERM while several images copy: the running copies stop at their next chunk,
    exit 143 with `Error: terminated`, and no destination tag is written."""
    big = tmp_path / "big.tar"
    ib.build_image(big, [ib.layer([("file", "big%d" % i, os.urandom(40 << 20))])
                         for i in range(3)])
    for tag in ("1", "2", "3"):
        run_cli("--insecure", "process", "tar://%s" % big,
                "registry://%s/synced/big:%s" % (source.url, tag), check=True)
    spec = _spec(tmp_path, "sync:\n  - source: registry://%s/synced/big\n"
                           "    destination: registry://%s/sigterm/big\n"
                           "    filters: [normalize-timestamps]\n"
                 % (source.url, destination.url))
    proc = subprocess.Popen([sys.executable, "-m", "occystrap", "--insecure", "-j", "1",
                             "--rate-limit", "20", "sync", str(spec)], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)             # the copies take several seconds: this is mid-layer
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert time.monotonic() - started < 15, err
    assert err.decode().strip().splitlines()[-1] == "Error: terminated"
    listed = peers.skopeo("list-tags", "--tls-verify=false",
                          "docker://%s/sigterm/big" % destination.url, check=False)
    assert listed.returncode != 0 or json.loads(listed.stdout)["Tags"] == []


def test_a_blob_kept_by_skip_in_one_image_is_still_rewritten_in_another(
        registry, destination, tmp_path):
    """normalize-timestamps:skip=1 keeps layer 0 as it is.  The same blob at index 0 of
    one image and index 1 of another is two different results: kept, and rewritten."""
    shared = ib.layer([("file", "shared", b"same bytes", {"mtime": ib.EPOCH + 99})])
    other = ib.layer([("file", "other", b"other bytes", {"mtime": ib.EPOCH + 99})])
    for tag, layers in (("low", [shared, other]), ("high", [other, shared])):
        path = tmp_path / ("%s.tar" % tag)
        ib.build_image(path, layers)
        run_cli("--insecure", "process", "tar://%s" % path,
                "registry://%s/skipped/app:%s" % (registry.url, tag), check=True)
    spec = _spec(tmp_path, "sync:\n  - source: registry://%s/skipped/app\n"
                           "    destination: registry://%s/skipped/app\n"
                           "    filters: ['normalize-timestamps:skip=1']\n"
                 % (registry.url, destination.url))
    _sync(spec, options=("-J", "2"))

    def layers(where, tag):
        out = peers.skopeo("inspect", "--raw", "--tls-verify=false",
                           "docker://%s/skipped/app:%s" % (where.url, tag)).stdout
        return [layer["digest"] for layer in json.loads(out)["layers"]]
    source_low, source_high = layers(registry, "low"), layers(registry, "high")
    low, high = layers(destination, "low"), layers(destination, "high")
    assert source_low[0] == source_high[1]          # one blob, at two positions
    assert low[0] == source_low[0]                  # skipped: kept byte for byte
    assert high[1] != source_high[1]                # above skip: rewritten
    assert high[0] == source_high[0]                # `other`: kept at index 0,
    assert low[1] != source_low[1]                  # rewritten at index 1
