"""Reproducible rewrites (docs/reproducibility.md): normalize-timestamps' mode, config
and skip keys, $SOURCE_DATE_EPOCH, and the same digests whatever -j."""
import hashlib
import os

import pytest

from tests import imagebuilder as ib
from tests.cli import occystrap
from tests.functional.test_tar_roundtrip import read_output

pytestmark = pytest.mark.functional

FILTER = "normalize-timestamps:mode=clamp,config=true,skip=1"


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.tar"
    return path, ib.build_image(path, ib.sample_layers(), layout="oci", compression="gzip")


def test_source_date_epoch_config_and_skip(image, tmp_path):
    path, info = image
    out = tmp_path / "out.tar"
    occystrap("process", "tar://%s" % path, "tar://%s" % out, "-f",
               "normalize-timestamps:config=true,skip=1",
               env=dict(os.environ, SOURCE_DATE_EPOCH="1000"), check=True)
    _manifest, config, layers = read_output(out)
    diff_ids = config["rootfs"]["diff_ids"]
    assert diff_ids[0] == info["diff_ids"][0]           # the base layer, untouched
    assert all(new != old for new, old in zip(diff_ids[1:], info["diff_ids"][1:]))
    first, *rest = layers.values()
    assert all(m.mtime != 1000 for m in first)
    assert all(m.mtime == 1000 for members in rest for m in members)
    assert config["created"] == "1970-01-01T00:16:40Z"
    assert {h["created"] for h in config["history"]} == {"1970-01-01T00:16:40Z"}


def test_clamp_keeps_older_times(image, tmp_path):
    """ib.CREATED and the members' mtimes are 1700000000: clamping later changes nothing,
    so the image keeps its config digest; clamping earlier sets them all."""
    path, info = image
    later, earlier = tmp_path / "later.tar", tmp_path / "earlier.tar"
    occystrap("process", "tar://%s" % path, "tar://%s" % later, "-f",
               "normalize-timestamps:mode=clamp,config=true,ts=2000000000", check=True)
    _manifest, config, _layers = read_output(later)
    assert config["rootfs"]["diff_ids"] == info["diff_ids"]
    assert config["created"] == ib.CREATED
    occystrap("process", "tar://%s" % path, "tar://%s" % earlier, "-f",
               "normalize-timestamps:mode=clamp,config=true,ts=1000", check=True)
    _manifest, config, layers = read_output(earlier)
    assert all(m.mtime == 1000 for members in layers.values() for m in members)
    assert config["created"] == "1970-01-01T00:16:40Z"


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_output_whatever_j_tar(image, tmp_path):
    path, _info = image
    outputs = []
    for jobs in ("1", "4"):
        out = tmp_path / ("out-%s.tar" % jobs)
        occystrap("-j", jobs, "process", "tar://%s" % path, "tar://%s" % out, "-f", FILTER,
                  check=True)
        outputs.append(_sha256(out))
    assert outputs[0] == outputs[1]


def test_same_digests_whatever_j_registry(image, registry, skopeo):
    path, info = image
    manifests = []
    for jobs in ("1", "4"):
        dest = "registry://%s/occy/repro:j%s" % (registry.url, jobs)
        occystrap("--insecure", "-j", jobs, "process", "tar://%s" % path, dest, "-f", FILTER,
                  check=True)
        raw = skopeo.inspect("docker://%s/occy/repro:j%s" % (registry.url, jobs), raw=True,
                             tls_verify=False)
        manifests.append(raw)
    assert manifests[0] == manifests[1]
    layers = manifests[0]["layers"]
    assert layers[0]["digest"] == info["layer_digests"][0]      # skip=1: the same blob
    assert layers[1]["digest"] != info["layer_digests"][1]
