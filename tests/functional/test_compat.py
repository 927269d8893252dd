"""Issue 11: scripts written for occystrap 0.4.17 keep working, against a real
docker-registry: names without the host, gzip level 9 blobs, summary sizes."""
import gzip
import io
import json
import urllib.request

import pytest

from tests import imagebuilder as ib
from tests import peers
from occystrap.model import format_size
from tests.cli import occystrap

pytestmark = pytest.mark.functional


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.tar"
    info = ib.build_image(path, ib.sample_layers(), repotag="example.com/team/app:1.0")
    return path, info


def _get(registry, path, accept="*/*"):
    request = urllib.request.Request("http://%s/v2/%s" % (registry.url, path),
                                     headers={"Accept": accept})
    with urllib.request.urlopen(request) as response:
        return response.read()


def test_gzip_level_9_pushes_the_blobs_0417_pushed(image, registry):
    path, _info = image
    occystrap("--insecure", "--compression-level", "9", "process", "tar://%s" % path,
              "registry://%s/team/gz9:1" % registry.url, check=True)
    manifest = json.loads(_get(registry, "team/gz9/manifests/1",
                               "application/vnd.docker.distribution.manifest.v2+json"))
    for layer in manifest["layers"]:
        blob = _get(registry, "team/gz9/blobs/%s" % layer["digest"])
        again = io.BytesIO()        # what 0.4.17 wrote (spec B.10): GzipFile, level 9, mtime 0
        with gzip.GzipFile(fileobj=again, mode="wb", compresslevel=9, mtime=0) as out:
            out.write(gzip.decompress(blob))
        assert blob == again.getvalue()
    occystrap("--insecure", "check", "registry://%s/team/gz9:1" % registry.url, check=True)


def test_registry_names_are_the_repository_path(image, registry, tmp_path):
    """0.4.17 named a registry image by its repository path (`team/app`), which
    scripts split on `:`; the host is in a new `registry` field."""
    path, _info = image
    src = "registry://%s/team/app:1.0" % registry.url
    occystrap("--insecure", "process", "tar://%s" % path, src, check=True)

    lines = occystrap("--insecure", "search", "--script-friendly", src, "*.pyc",
                      check=True).stdout.splitlines()
    assert lines and all(line.startswith("team/app:1.0:") for line in lines)
    assert lines[0].split(":")[3] == "app/__pycache__/main.cpython-311.pyc"

    info = json.loads(occystrap("--insecure", "-O", "json", "info", src, check=True).stdout)
    assert (info["image"], info["tag"], info["registry"]) == ("team/app", "1.0", registry.url)
    text = occystrap("--insecure", "info", src, check=True).stdout
    assert text.splitlines()[0] == "Image:         team/app:1.0"
    report = json.loads(occystrap("--insecure", "-O", "json", "check", "--fast", src,
                                  check=True).stdout)
    assert (report["image"], report["registry"]) == ("team/app", registry.url)

    out = tmp_path / "d"
    record_file = tmp_path / "inspect.jsonl"
    occystrap("--insecure", "process", src, "dir://%s?unique_names=true" % out,
              "-f", "inspect:file=%s" % record_file, check=True)
    record = json.loads(record_file.read_text())
    assert (record["name"], record["layers"][0]["Tags"], record["registry"]) == \
        ("team/app:1.0", ["team/app:1.0"], registry.url)
    assert json.loads((out / "catalog.json").read_text()) == \
        {"team/app": {"1.0": "manifest-team_app-1.0.json"}}
    manifest = json.loads((out / "manifest-team_app-1.0.json").read_text())
    assert manifest[0]["RepoTags"] == ["%s/team/app:1.0" % registry.url]
    assert manifest[0]["ImageName"] == "team/app"
    occystrap("process", "dir://%s?image=team/app&tag=1.0" % out,
              "tar://%s" % (tmp_path / "back.tar"), check=True)


def _summary_size(stderr):
    return [line for line in stderr.splitlines() if line.startswith("Summary:")][0] \
        .split(", ")[1]


def _blob(url, repo, digest):
    with urllib.request.urlopen("http://%s/v2/%s/blobs/%s" % (url, repo, digest)) as response:
        return response.read()


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_byte_exact_copies_count_uncompressed_sizes(image, registry, kind):
    """A registry -> registry copy with nothing to change passes blobs through without
    decompressing them, yet its SIZE is the layers' uncompressed size, as for tar ->
    registry: from the gzip trailer as the bytes pass, and again from the trailer
    alone (a Range request) when the destination has every blob.  occystrap's own zstd
    frames record no content size, so a zstd layer counts with its stored size."""
    path, _info = image
    src = "registry://%s/team/size-%s:1" % (registry.url, kind)
    pushed = occystrap("--insecure", "--compression", kind, "process", "tar://%s" % path,
                       src, check=True)
    other = peers.Registry().start()    # a second registry: no mount, no blob already there
    try:
        copies = [occystrap("--insecure", "--verbose", "process", src,
                            "registry://%s/team/size-copy:1" % other.url, check=True)
                  for _run in range(2)]         # the second finds every blob by HEAD
        manifest = peers.skopeo_inspect("docker://%s/team/size-copy:1" % other.url,
                                        raw=True, tls_verify=False)
        blobs = [_blob(other.url, "team/size-copy", layer["digest"])
                 for layer in manifest["layers"]]
    finally:
        other.stop()
    assert [proc.stderr.count(" reused: ") for proc in copies] == [0, len(blobs)]
    if kind == "gzip":
        expected = format_size(sum(len(gzip.decompress(blob)) for blob in blobs))
        assert expected == _summary_size(pushed.stderr)
    else:
        expected = format_size(sum(len(blob) for blob in blobs))
    assert [_summary_size(proc.stderr) for proc in copies] == [expected] * 2


def test_rewritten_image_counts_its_untouched_reused_layer_uncompressed(image, registry):
    """A rewritten image whose first layer no filter touches: that blob is mounted from
    the source repository, not read, and still counts with its uncompressed size."""
    path, _info = image
    src = "registry://%s/team/size-skip:1" % registry.url
    occystrap("--insecure", "process", "tar://%s" % path, src, check=True)
    dest = "team/size-skip-out"
    proc = occystrap("--insecure", "--verbose", "process", src,
                     "registry://%s/%s:1" % (registry.url, dest),
                     "-f", "normalize-timestamps:skip=1", check=True)
    manifest = json.loads(_get(registry, "%s/manifests/1" % dest,
                               "application/vnd.docker.distribution.manifest.v2+json"))
    blobs = [_blob(registry.url, dest, layer["digest"]) for layer in manifest["layers"]]
    assert proc.stderr.count(" reused: ") == 1
    expected = format_size(sum(len(gzip.decompress(blob)) for blob in blobs))
    assert _summary_size(proc.stderr) == expected
