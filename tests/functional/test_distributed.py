"""`occystrap worker` and `sync --broker` (docs/distributed.md): real redis-server as
the broker and shared state, real `occystrap worker` processes, docker-registry on
both sides, skopeo as the judge of what arrived."""
import hashlib
import json
import os
import time
import urllib.error
import urllib.request

import pytest

from tests import imagebuilder as ib
from tests import peers
from tests.cli import REPO, background, occystrap as run_cli
from tests.faultproxy import FaultProxy
from tests.workers import started

pytestmark = [pytest.mark.functional, pytest.mark.slow]

TAGS = ("1", "2", "3", "4")
BASE = os.urandom(6 << 20)              # the layer every image shares


def _push(tmp, registry, ref, unique):
    path = tmp / ("%s.tar" % ref.replace("/", "_").replace(":", "_"))
    ib.build_image(path, [ib.layer([("file", "base", BASE)]),
                          ib.layer([("file", "own", unique)])])
    run_cli("--insecure", "process", "tar://%s" % path, "registry://%s/%s" % (registry.url, ref),
            check=True)


@pytest.fixture(scope="module")
def source(registry, tmp_path_factory):
    """dist/app:1..4 in the session registry: one shared 6 MiB base layer each, and a
    2 MiB layer of its own."""
    tmp = tmp_path_factory.mktemp("dist-src")
    for tag in TAGS:
        _push(tmp, registry, "dist/app:%s" % tag, os.urandom(2 << 20))
    return registry


@pytest.fixture
def destination():
    with peers.Registry(access_log=True) as other:
        yield other


@pytest.fixture
def workers(redis_url):
    """start(names, ...) -> ready Workers; all stopped at the end of the test."""
    made = []

    def start(names, *options, **kwargs):
        new = started(redis_url, names, "--insecure", *options, **kwargs)
        made.extend(new)
        return new

    yield start
    for worker in made:
        worker.stop()


def _spec(tmp_path, source_url, destination, filters=None):
    text = ("sync:\n  - source: registry://%s/dist/app\n"
            "    destination: registry://%s/mirror/app\n" % (source_url, destination.url))
    if filters:
        text += "    filters: [%s]\n" % ", ".join(filters)
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def _sync(spec, broker, *args, check=True):
    proc = run_cli("--insecure", "-O", "json", "sync", str(spec), "--broker", broker, *args,
                   check=check, timeout=300)
    return proc, json.loads(proc.stdout) if proc.stdout.strip() else None


def _raw_digest(registry, ref):
    out = peers.skopeo("inspect", "--raw", "--tls-verify=false",
                       "docker://%s/%s" % (registry.url, ref)).stdout
    return "sha256:" + hashlib.sha256(out.encode()).hexdigest()


def _tagged(registry, repository, tag):
    request = urllib.request.Request("%s/v2/%s/manifests/%s" % (registry.base_url, repository,
                                                                tag), method="HEAD")
    request.add_header("Accept", "application/vnd.docker.distribution.manifest.v2+json")
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except urllib.error.HTTPError as exc:
        assert exc.code == 404, exc
        return False


def _stall_own_layer(slow, source, seconds):
    """The first GET of image 1's own layer through the FaultProxy slow waits seconds."""
    own = json.loads(peers.skopeo("inspect", "--raw", "--tls-verify=false",
                                  "docker://%s/dist/app:1" % source.url).stdout)
    slow.add("GET", r"/blobs/%s" % own["layers"][1]["digest"], seconds)


def _sync_until_stalled(spec, broker, slow, *options):
    """`sync SPEC --broker` started in the background; returned once a worker is held
    in image 1's stalled layer."""
    sync = background("--insecure", *options, "sync", spec, "--broker", broker)
    deadline = time.monotonic() + 60
    while not slow.fired("GET"):
        assert time.monotonic() < deadline and sync.poll() is None, sync.communicate()
        time.sleep(0.05)
    return sync


def _check_copied(source, destination, tmp_path):
    """Every tag at the destination is the source's image, byte for byte, and skopeo
    can pull it whole (every blob checked against its digest)."""
    for tag in TAGS:
        assert _raw_digest(destination, "mirror/app:" + tag) == \
            _raw_digest(source, "dist/app:" + tag)
        peers.skopeo("copy", "--src-tls-verify=false",
                     "docker://%s/mirror/app:%s" % (destination.url, tag),
                     "oci:%s:%s" % (tmp_path / "pulled", tag))


def test_workers_share_the_jobs_and_upload_each_blob_once(source, destination, workers,
                                                           redis_url, tmp_path):
    one, two = workers(["one", "two"])
    spec = _spec(tmp_path, source.url, destination)
    proc, report = _sync(spec, redis_url)
    assert [r["status"] for r in report["images"]] == ["copied"] * 4, report
    names = {r["worker"] for r in report["images"]}
    assert names == {one.name, two.name}, names        # prefetch 1: both took jobs
    assert all(" on %s@test" % name in proc.stderr for name in ("one", "two")), proc.stderr
    _check_copied(source, destination, tmp_path)
    uploads = destination.uploads("mirror/app")
    # 4 configs, 4 own layers, the shared base: each went up once
    assert len(uploads) == 9 and set(uploads.values()) == {1}, uploads
    assert report["summary"]["layers_uploaded"] == 5        # the base once, 4 own layers
    assert report["summary"]["layers_reused"] == 3

    again, rerun = _sync(spec, redis_url)
    assert [r["status"] for r in rerun["images"]] == ["unchanged"] * 4
    assert destination.uploads("mirror/app") == uploads    # nothing went up
    assert "Sync: 4 images, 4 unchanged" in again.stderr


def test_filtered_jobs_rewrite_the_shared_base_once(source, destination, workers, redis_url,
                                                    tmp_path):
    """Rewritten layers: their digests are unknown until made, so only the lease keeps a
    second worker from rewriting and uploading the shared base again."""
    workers(["one", "two"])
    spec = _spec(tmp_path, source.url, destination, ["normalize-timestamps"])
    _proc, report = _sync(spec, redis_url)
    assert [r["status"] for r in report["images"]] == ["copied"] * 4, report
    uploads = destination.uploads("mirror/app")
    assert len(uploads) == 9 and set(uploads.values()) == {1}, uploads
    for tag in TAGS:
        peers.skopeo("copy", "--src-tls-verify=false",
                     "docker://%s/mirror/app:%s" % (destination.url, tag),
                     "oci:%s:%s" % (tmp_path / "pulled", tag))
    _again, rerun = _sync(spec, redis_url)
    assert [r["status"] for r in rerun["images"]] == ["unchanged"] * 4
    assert destination.uploads("mirror/app") == uploads


def test_a_worker_killed_mid_image_loses_nothing(source, destination, workers, redis_url,
                                                 tmp_path):
    """kill -9 of the worker (its whole process group) while it reads image 1's own
    layer: nothing is tagged for that image, the job goes to another worker once the
    visibility timeout passes, every image is right, and every blob went up once."""
    with FaultProxy(source.url) as slow:
        _stall_own_layer(slow, source, 25.0)            # once: the first reader stalls
        spec = _spec(tmp_path, slow.address, destination)
        fleet = workers(["one", "two"], visibility_timeout=25)
        sync = _sync_until_stalled(spec, redis_url, slow, "-O", "json")
        victim = next(w for w in fleet if "/dist/app:1 -> " in w.log())
        victim.kill()
        assert not _tagged(destination, "mirror/app", "1")
        out, err = sync.communicate(timeout=240)
    assert sync.returncode == 0, err
    report = json.loads(out)
    assert [r["status"] for r in report["images"]] == ["copied"] * 4, report
    first = next(r for r in report["images"] if r["destination"].endswith(":1"))
    assert first["worker"] != victim.name
    _check_copied(source, destination, tmp_path)
    uploads = destination.uploads("mirror/app")
    assert len(uploads) == 9 and set(uploads.values()) == {1}, uploads
    _again, rerun = _sync(_spec(tmp_path, source.url, destination), redis_url)
    assert [r["status"] for r in rerun["images"]] == ["unchanged"] * 4


def test_no_wait_prints_the_job_ids(source, destination, workers, redis_url, tmp_path):
    spec = _spec(tmp_path, source.url, destination)
    proc = run_cli("--insecure", "sync", str(spec), "--broker", redis_url, "--no-wait",
                   check=True, timeout=60)
    lines = proc.stdout.splitlines()
    assert len(lines) == 4, proc.stdout
    ids = [line.split()[0] for line in lines]
    assert all(len(job) == 36 for job in ids)               # Celery task ids (UUIDs)
    assert "Sent 4 jobs" in proc.stderr
    assert not _tagged(destination, "mirror/app", "1")      # no worker yet: queued
    workers(["late"])                                        # a worker comes later
    deadline = time.monotonic() + 120
    while not all(_tagged(destination, "mirror/app", tag) for tag in TAGS):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    _check_copied(source, destination, tmp_path)


def test_a_failed_image_stops_the_rest_unless_keep_going(source, destination, workers,
                                                         redis_url, tmp_path):
    workers(["one"])
    spec = tmp_path / "spec.yaml"
    spec.write_text("sync:\n"
                    "  - source: registry://%s/dist/missing:1\n"
                    "    destination: registry://%s/mirror/missing:1\n"
                    "  - source: registry://%s/dist/app:1\n"
                    "    destination: registry://%s/mirror/app:1\n"
                    % (source.url, destination.url, source.url, destination.url))
    proc, report = _sync(spec, redis_url, check=False)
    assert proc.returncode == 1
    assert [r["status"] for r in report["images"]] == ["failed"], report
    assert report["images"][0]["worker"] == "one@test"
    assert "1 not started" in proc.stderr
    assert not _tagged(destination, "mirror/app", "1")
    proc, report = _sync(spec, redis_url, "--keep-going", check=False)
    assert proc.returncode == 1
    assert [r["status"] for r in report["images"]] == ["failed", "copied"]


def test_without_the_extra_the_commands_say_what_to_install(tmp_path):
    hidden = tmp_path / "hide"
    for name in ("celery", "redis"):
        (hidden / name).mkdir(parents=True)
        (hidden / name / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    env = {"PYTHONPATH": "%s%s%s" % (hidden, os.pathsep, REPO)}
    proc = run_cli("worker", "--broker", "redis://127.0.0.1:1/0", env=env, check=False)
    assert "pip install 'occystrap[distributed]'" in proc.stderr
    spec = tmp_path / "spec.yaml"
    spec.write_text("sync:\n  - source: ocidir://%s/examples/multiarch\n"
                    "    destination: ocidir://%s/out\n" % (REPO, tmp_path))
    proc = run_cli("sync", str(spec), "--broker", "redis://127.0.0.1:1/0", env=env,
                   check=False)
    assert "pip install 'occystrap[distributed]'" in proc.stderr
    proc = run_cli("sync", str(spec), "--no-wait", check=False)
    assert "--no-wait needs --broker" in proc.stderr


def test_an_unreachable_broker_is_one_error_line(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("sync:\n  - source: ocidir://%s/examples/multiarch\n"
                    "    destination: ocidir://%s/out\n" % (REPO, tmp_path))
    proc = run_cli("sync", str(spec), "--broker", "redis://127.0.0.1:%d/0" % peers.free_port(),
                   check=False, timeout=120)
    assert "Error: cannot reach the broker redis://127.0.0.1:" in proc.stderr, proc.stderr


def test_sigterm_to_the_sender_stops_the_jobs_not_begun(source, destination, workers,
                                                        redis_server, redis_url, tmp_path):
    """SIGTERM while the one worker copies image 1: `Error: terminated`, exit 143; the
    image in flight finishes, the three jobs not begun start nothing."""
    with FaultProxy(source.url) as slow:
        _stall_own_layer(slow, source, 5.0)
        spec = _spec(tmp_path, slow.address, destination)
        worker, = workers(["one"])
        sync = _sync_until_stalled(spec, redis_url, slow)
        sync.terminate()
        _out, err = sync.communicate(timeout=30)
        assert sync.returncode == 143, err
        assert err.splitlines()[-1] == "Error: terminated", err
        assert "Traceback" not in err
        assert redis_server.cli("KEYS", "occystrap:run:*:stop")
        deadline = time.monotonic() + 120           # the worker drains the queue
        while worker.log().count("succeeded in") < 4:
            assert time.monotonic() < deadline, worker.log()
            time.sleep(0.2)
    assert worker.log().count("s: None") == 3, worker.log()
    assert _tagged(destination, "mirror/app", "1")          # the one in flight finished
    assert not any(_tagged(destination, "mirror/app", tag) for tag in TAGS[1:])


def test_a_message_that_is_no_job_is_a_failed_record(workers, redis_url):
    from occystrap.distributed.tasks import QUEUE, TASK, make_app
    workers(["one"])
    app = make_app(redis_url)
    for junk in ({"v": 99, "run": "r", "source": "a", "destination": "b"}, {}, "junk"):
        result = app.send_task(TASK, args=[junk], queue=QUEUE)
        record = result.get(timeout=60)
        assert record["status"] == "failed", record
        assert "job message" in record["error"], record
        assert record["worker"] == "one@test"


def test_source_date_epoch_is_the_senders(source, destination, workers, redis_url, tmp_path):
    """normalize-timestamps takes ts from the sender's $SOURCE_DATE_EPOCH; the workers
    (whose environment has none) make what a local sync on the sender makes."""
    workers(["one"])
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    spec = _spec(tmp_path, source.url, destination, ["normalize-timestamps"])
    proc = run_cli("--insecure", "-O", "json", "sync", str(spec), "--broker", redis_url,
                   env=env, check=True, timeout=300)
    remote = {r["destination"]: r["digest"] for r in json.loads(proc.stdout)["images"]}
    with peers.Registry() as other:
        local_spec = tmp_path / "local.yaml"
        local_spec.write_text(spec.read_text().replace(destination.url, other.url))
        proc = run_cli("--insecure", "-O", "json", "sync", str(local_spec), env=env,
                       check=True, timeout=300)
        local = {r["destination"].replace(other.url, destination.url): r["digest"]
                 for r in json.loads(proc.stdout)["images"]}
    assert remote == local
    config = json.loads(peers.skopeo("inspect", "--config", "--tls-verify=false",
                                     "docker://%s/mirror/app:1" % destination.url).stdout)
    assert config["rootfs"]["diff_ids"]          # and the layers carry the sender's ts:
    pulled = tmp_path / "pulled"
    peers.skopeo("copy", "--src-tls-verify=false",
                 "docker://%s/mirror/app:1" % destination.url, "dir:%s" % pulled)
    manifest = json.loads((pulled / "manifest.json").read_text())
    import gzip
    import tarfile
    blob = pulled / manifest["layers"][0]["digest"].split(":")[1]
    with tarfile.open(fileobj=gzip.open(blob)) as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}


def test_losing_the_broker_mid_run_is_one_error_line(source, destination, tmp_path):
    with peers.RedisServer() as broker, FaultProxy(source.url) as slow:
        _stall_own_layer(slow, source, 10.0)
        worker, = started(broker.url, ["one"], "--insecure")
        try:
            spec = _spec(tmp_path, slow.address, destination)
            sync = _sync_until_stalled(spec, broker.url, slow)
            broker.stop()
            _out, err = sync.communicate(timeout=60)
        finally:
            worker.stop()
    assert sync.returncode == 1, err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("Error: lost the broker redis://127.0.0.1:"), err


def test_no_wait_refuses_a_digestfile(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("sync:\n  - source: ocidir://%s/examples/multiarch\n"
                    "    destination: ocidir://%s/out\n" % (REPO, tmp_path))
    proc = run_cli("sync", str(spec), "--broker", "redis://127.0.0.1:1/0", "--no-wait",
                   "--digestfile", str(tmp_path / "d"), check=False)
    assert "--no-wait writes no --digestfile" in proc.stderr
    for bad, message in (("http://x", "is not a Redis URL"),
                         ("redis://:s3cret@h:notaport/0", "bad Redis URL redis://:***@h"),
                         ("redis://h/notadb", "the database is a number")):
        proc = run_cli("sync", str(spec), "--broker", bad, check=False)
        assert message in proc.stderr, proc.stderr
        assert "s3cret" not in proc.stderr


def test_the_python_api_sends_to_the_workers(source, destination, workers, redis_url,
                                             tmp_path):
    import occystrap
    workers(["one"])
    spec = _spec(tmp_path, source.url, destination)
    report = occystrap.sync(str(spec), {"insecure": True}, broker=redis_url, keep_going=True)
    assert [(r.status, r.worker) for r in report.images] == [("copied", "one@test")] * 4
    assert not report.failed
    _check_copied(source, destination, tmp_path)


def test_dry_run_through_the_workers_writes_nothing(source, destination, workers, redis_url,
                                                    tmp_path):
    workers(["one"])
    spec = _spec(tmp_path, source.url, destination)
    proc, report = _sync(spec, redis_url, "--dry-run")
    assert [r["status"] for r in report["images"]] == ["would copy"] * 4, report
    assert not any(_tagged(destination, "mirror/app", tag) for tag in TAGS)
    assert destination.uploads("mirror/app") == {}
