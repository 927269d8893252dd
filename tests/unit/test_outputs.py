"""dir://, oci:// and the observer filters (search, inspect), run through the CLI."""
import json
import os
import tarfile

import pytest

from occystrap.api import rewrite_config
from occystrap.errors import InputError
from occystrap.transports.base import LayerResult
from tests import imagebuilder as ib
from tests.cli import occystrap

REPOTAG = "example.com/demo/app:1.0"


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.tar"
    info = ib.build_image(path, ib.sample_layers(), repotag=REPOTAG)
    return path, info


def test_dir_layout(image, tmp_path):
    path, info = image
    out = tmp_path / "d"
    occystrap("process", "tar://%s" % path, "dir://%s" % out, check=True)
    manifest = json.loads((out / "manifest.json").read_text())
    hexes = [d.split(":")[1] for d in info["diff_ids"]]
    assert manifest == [{"Config": info["config_digest"].split(":")[1] + ".json",
                         "Layers": ["%s/layer.tar" % h for h in hexes],
                         "RepoTags": [REPOTAG]}]
    # the config is stored verbatim, so it still hashes to its name (0.4.17 re-serialized it)
    config = (out / manifest[0]["Config"]).read_bytes()
    import hashlib
    assert hashlib.sha256(config).hexdigest() + ".json" == manifest[0]["Config"]
    assert json.loads((out / "catalog.json").read_text()) == \
        {"example.com/demo/app": {"1.0": "manifest.json"}}
    for h in hexes:
        assert hashlib.sha256((out / h / "layer.tar").read_bytes()).hexdigest() == h


def test_dir_unique_names_share_layers(tmp_path):
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    layers = ib.sample_layers()
    ib.build_image(first, layers, repotag="example.com/a:1")
    ib.build_image(second, layers[:2], repotag="example.com/b:2")
    out = tmp_path / "d"
    for path in (first, second):
        occystrap("process", "tar://%s" % path, "dir://%s?unique_names=true" % out, check=True)
    catalog = json.loads((out / "catalog.json").read_text())
    assert catalog == {"example.com/a": {"1": "manifest-example.com_a-1.json"},
                       "example.com/b": {"2": "manifest-example.com_b-2.json"}}
    manifest = json.loads((out / "manifest-example.com_b-2.json").read_text())[0]
    assert manifest["ImageName"] == "example.com/b"
    assert len([d for d in os.listdir(out) if len(d) == 64]) == 3


def test_dir_expand_applies_whiteouts(image, tmp_path):
    path, _info = image
    out = tmp_path / "d"
    occystrap("process", "tar://%s" % path, "dir://%s?expand=true" % out, check=True)
    root = out / "manifest"
    assert not (root / "etc" / "os-release").exists()          # whited out by layer 3
    assert (root / "app" / "main.py").read_text() == "print('hello')\n"
    assert os.stat(root / "app" / "main.py").st_ino == os.stat(root / "app" / "main-link.py").st_ino
    assert os.readlink(root / "etc" / "localtime") == "/usr/share/zoneinfo/UTC"
    assert os.stat(root / "tmp").st_mode & 0o7777 == 0o1777


def test_oci_bundle(image, tmp_path):
    path, info = image
    out = tmp_path / "bundle"
    proc = occystrap("process", "tar://%s" % path, "oci://%s" % out, check=True)
    assert "verified OK" in proc.stderr                 # 0.4.17 always failed here (E.2 #1)
    assert sorted(os.listdir(out)) == ["config.json", "container-config.json", "rootfs"]
    config = json.loads((out / "config.json").read_text())
    assert config["root"] == {"path": "rootfs", "readonly": True}
    assert config["process"]["args"] == info["config"]["config"].get("Entrypoint", []) + \
        info["config"]["config"]["Cmd"]
    assert (out / "rootfs" / "app" / "main.py").exists()


def test_oci_refuses_non_empty_target(image, tmp_path):
    path, _ = image
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "keep").write_text("x")
    proc = occystrap("process", "tar://%s" % path, "oci://%s" % out, check=False)
    assert "not an empty directory" in proc.stderr
    assert os.listdir(out) == ["keep"]


def test_search_output_formats(image):
    path, info = image
    proc = occystrap("search", "tar://%s" % path, "*.py", check=True)
    layer = info["v1_ids"][1]
    assert proc.stdout == ("Layer: %s\n"
                           "  app/main.py (file, 15 bytes)\n"
                           "  app/main-link.py -> app/main.py (hardlink)\n"
                           "\n"
                           "Found 2 matches in 1 layer.\n" % layer)
    proc = occystrap("search", "--script-friendly", "tar://%s" % path, "*.py", check=True)
    assert proc.stdout.splitlines() == ["example.com/demo/app:1.0:%s:app/main.py" % layer,
                                        "example.com/demo/app:1.0:%s:app/main-link.py" % layer]
    proc = occystrap("search", "--regex", "tar://%s" % path, "^etc/.*release$", check=True)
    assert proc.stdout.endswith("Found 2 matches in 2 layers.\n")   # the file, its whiteout
    assert occystrap("search", "tar://%s" % path, "nothing-here", check=True).stdout == \
        "No matches found.\n"
    assert occystrap("search", "--script-friendly", "tar://%s" % path, "zzz",
                     check=True).stdout == ""


def test_search_and_inspect_as_filters(image, tmp_path):
    path, info = image
    jsonl = tmp_path / "inspect.jsonl"
    out = tmp_path / "o.tar"
    proc = occystrap("process", "tar://%s" % path, "tar://%s" % out,
                     "-f", "inspect:file=%s" % jsonl, "-f", "normalize-timestamps",
                     "-f", "search:pattern=*.pyc,script_friendly=true", check=True)
    assert proc.stdout.count("app/__pycache__/main.cpython-311.pyc") == 1
    record = json.loads(jsonl.read_text())
    assert record["name"] == REPOTAG
    assert [layer["Id"] for layer in record["layers"]] == \
        ["sha256:" + v for v in reversed(info["v1_ids"])]
    assert record["layers"][0]["Tags"] == [REPOTAG]
    assert [layer["Tags"] for layer in record["layers"][1:]] == [None, None]
    with tarfile.open(out) as tar:
        assert tar.getmember("manifest.json")


def test_inspect_after_a_rewrite_names_rewritten_layers(image, tmp_path):
    path, info = image
    jsonl = tmp_path / "i.jsonl"
    out = tmp_path / "o.tar"
    occystrap("process", "tar://%s" % path, "tar://%s" % out, "-f", "normalize-timestamps",
              "-f", "inspect:file=%s" % jsonl, check=True)
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
    ids = [layer["Id"] for layer in json.loads(jsonl.read_text())["layers"]]
    assert ids == ["sha256:" + name.split("/")[0] for name in reversed(manifest["Layers"])]


@pytest.mark.parametrize("config", [b'{"rootfs": null}', b"{}"])
def test_rewrite_config_adds_a_missing_rootfs(config):
    result = LayerResult(0, "sha256:" + "a" * 64, 1, "sha256:" + "b" * 64, 1, "x")
    assert json.loads(rewrite_config(config, [result]))["rootfs"] == \
        {"type": "layers", "diff_ids": ["sha256:" + "a" * 64]}


@pytest.mark.parametrize("config", [b"[1]", b'{"rootfs": {"diff_ids": "x"}}', b"[" * 200])
def test_rewrite_config_refuses_malformed_configs(config):
    with pytest.raises(InputError, match="image config is not valid"):
        rewrite_config(config, [])


@pytest.mark.parametrize("cut", ["data", "extended", "empty"])
def test_tar_index_refuses_what_the_rewriter_refuses(tmp_path, cut):
    from occystrap import tarindex
    from occystrap._native import tarstream_py
    member = tarstream_py.format_header(b"f", 0o644, 0, 0, 1000, 0, b"0")
    data = {"data": member + bytes(600),                       # 1000 bytes declared
            "extended": tarstream_py.format_header(b"p" * 200, 0o644, 0, 0, 0, 0, b"0")[:1024]
            + bytes(1024),                                     # PAX header, then the end
            "empty": b""}[cut]
    path = tmp_path / "layer.tar"
    path.write_bytes(data)
    assert tarindex.tar_error(str(path))
