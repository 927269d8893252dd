"""Issue 11: scripts written for occystrap 0.4.17 keep working, against a real
docker-registry: names without the host, gzip level 9 blobs, summary sizes."""
import gzip
import io
import json
import urllib.request

import pytest

from tests import imagebuilder as ib
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
