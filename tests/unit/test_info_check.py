"""`info` and `check` (spec B.4, B.5): exact 0.4.17 output formats, its bugs fixed.

Images are built with tests/imagebuilder.py; the CLI runs as a subprocess (tests/cli.py),
the metadata logic is also called directly on in-memory sources for manifest cases
(registry-like sources, which tar:// never is).
"""
import hashlib
import io
import json
import os

import pytest

from occystrap.report import check as check_mod
from occystrap.report import info as info_mod
from occystrap.transports.base import ImageSource, LayerRef
from tests import imagebuilder as ib
from tests.cli import occystrap

INFO_KEYS_TAR = ["image", "tag", "architecture", "os", "variant", "created", "diff_ids",
                 "layer_count", "layers", "history_count", "empty_layer_count", "labels",
                 "env", "entrypoint", "cmd", "working_dir", "exposed_ports", "volumes",
                 "implementation"]


def short(digest):
    return digest[:25] + "..."


@pytest.fixture
def image(tmp_path):
    """build(name, layers=None, **kwargs) -> (uri, build_image result)."""
    def build(name="img.tar", layers=None, **kwargs):
        path = tmp_path / name
        built = ib.build_image(path, ib.sample_layers() if layers is None else layers, **kwargs)
        return "tar://%s" % path, built
    return build


def lines(text):
    return text.splitlines()


# -- info -----------------------------------------------------------------------------

def expected_info_text(built):
    d = built["diff_ids"]
    return "\n".join([
        "Image:         example.com/demo/app:1.0",
        "Platform:      linux/amd64",
        "Created:       2023-11-14T22:13:20Z",
        "",
        "Layers: 3",
        "",
        "+---+------------------------------+-----------------------------------------+",
        "| # | DiffID                       | Created By                              |",
        "+---+------------------------------+-----------------------------------------+",
        "| 0 | %s | /bin/sh -c #(nop) ADD file:layer0 in /  |" % short(d[0]),
        "| 1 | %s | /bin/sh -c #(nop) ADD file:layer1 in /  |" % short(d[1]),
        "| 2 | %s | /bin/sh -c #(nop) ADD file:layer2 in /  |" % short(d[2]),
        "+---+------------------------------+-----------------------------------------+",
        "",
        "History: 4 entries (1 empty)",
        "",
        "Container Config:",
        "  Entrypoint: ['/docker-entrypoint.sh']",
        "  Cmd:        ['/bin/sh']",
        "  WorkingDir: /app",
        "  Ports:      8080/tcp",
        "  Environment:",
        "    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "    LANG=C.UTF-8",
        "  Labels:",
        "    org.opencontainers.image.title=demo",
    ]) + "\n"


LAYOUTS = [("legacy", "none"), ("oci", "none"), ("oci", "gzip"), ("oci", "zstd"),
           ("podman", "none")]


@pytest.mark.parametrize("layout, compression", LAYOUTS)
def test_info_text(image, layout, compression):
    uri, built = image(layout=layout, compression=compression)
    proc = occystrap("info", uri, check=True)
    assert proc.stdout == expected_info_text(built)


@pytest.mark.parametrize("layout, compression", LAYOUTS)
def test_info_json(image, layout, compression):
    uri, built = image(layout=layout, compression=compression)
    proc = occystrap("-O", "json", "info", uri, check=True)
    data = json.loads(proc.stdout)
    assert list(data) == INFO_KEYS_TAR
    assert proc.stdout.startswith('{\n  "image": "example.com/demo/app",\n  "tag": "1.0",\n')
    assert data["diff_ids"] == built["diff_ids"]
    assert data["layer_count"] == 3
    assert data["layers"] == [
        {"index": i, "diff_id": d, "created_by": "/bin/sh -c #(nop) ADD file:layer%d in / " % i}
        for i, d in enumerate(built["diff_ids"])]
    assert data["history_count"] == 4 and data["empty_layer_count"] == 1
    assert data["labels"] == {"org.opencontainers.image.title": "demo"}
    assert data["entrypoint"] == ["/docker-entrypoint.sh"] and data["cmd"] == ["/bin/sh"]
    assert data["exposed_ports"] == ["8080/tcp"] and data["volumes"] == []
    assert data["variant"] == "" and data["working_dir"] == "/app"
    assert data["implementation"] in ("cython", "python")
    # a tar has no distribution manifest: none of its fields appear
    for key in ("schema_version", "media_type", "config_digest", "total_compressed_size"):
        assert key not in data


def test_info_text_config_variants(image):
    history = [
        {"created": ib.CREATED, "created_by": "/bin/sh -c apt-get update && apt-get install -y "
         "--no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*"},
        {"created": ib.CREATED, "created_by": "RUN /bin/sh -c set -eux;\n  echo hi"},
    ]
    uri, built = image(layers=ib.sample_layers()[:2], config={
        "history": history, "variant": "v8",
        "config": {"Volumes": {"/data": {}, "/x": {}}, "Labels": {"a": "b"}, "Entrypoint": None,
                   "ExposedPorts": None}})
    out = lines(occystrap("info", uri, check=True).stdout)
    d = built["diff_ids"]
    assert out[1] == "Platform:      linux/amd64/v8"
    table = out[out.index("Layers: 2") + 2:]
    assert table[:8] == [
        "+---+------------------------------+----------------------------------------------------+",
        "| # | DiffID                       | Created By                                         |",
        "+---+------------------------------+----------------------------------------------------+",
        "| 0 | %s | /bin/sh -c apt-get update && apt-get install -y    |" % short(d[0]),
        "|   |                              | --no-install-recommends ca-certificates curl && rm |",
        "|   |                              | -rf /var/lib/apt/lists/*                           |",
        "| 1 | %s | RUN /bin/sh -c set -eux;                           |" % short(d[1]),
        "|   |                              |   echo hi                                          |",
    ]
    assert "History: 2 entries (0 empty)" in out
    assert "  Entrypoint:" not in "\n".join(out)
    assert "  Ports:" not in "\n".join(out)
    assert out[out.index("Container Config:") + 1:] == [
        "  Cmd:        ['/bin/sh']",
        "  WorkingDir: /app",
        "  Volumes:    /data, /x",
        "  Environment:",
        "    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "    LANG=C.UTF-8",
        "  Labels:",
        "    org.opencontainers.image.title=demo",
        "    a=b",
    ]


def test_info_without_history(image):
    uri, _built = image(config={"history": None, "config": None})
    proc = occystrap("info", uri, check=True)
    out = lines(proc.stdout)
    assert out[6] == "+---+------------------------------+"
    assert out[7] == "| # | DiffID                       |"
    assert "History: 0 entries (0 empty)" in out
    assert out[-2:] == ["", "Container Config:"]
    data = json.loads(occystrap("-O", "json", "info", uri, check=True).stdout)
    assert all(set(layer) == {"index", "diff_id"} for layer in data["layers"])
    assert data["labels"] == {} and data["env"] == [] and data["cmd"] is None


def test_info_example_hello():
    proc = occystrap("info", "tar://examples/hello.tar", check=True)
    assert proc.stdout.startswith("Image:         example.com/occystrap/hello:1.0\n")
    assert "  Cmd:        ['/bin/hello']" in proc.stdout


def test_info_missing_file():
    proc = occystrap("info", "tar:///nonexistent/image.tar", check=False)
    assert "Error: No such file: /nonexistent/image.tar" in proc.stderr


# -- info and check with a distribution manifest (registry-like sources) ---------------

CONFIG = {
    "architecture": "arm64", "variant": "v8", "os": "linux", "created": "2024-01-01T00:00:00Z",
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "a" * 64, "sha256:" + "b" * 64]},
    "history": [{"created_by": "RUN x"}, {"created_by": "ENV y", "empty_layer": True},
                {"created_by": "COPY z " * 10}],
    "config": {"Cmd": ["sh"], "Volumes": {"/v": {}}},
}


class FakeSource(ImageSource):
    """A registry-like source: a manifest, a config, layers from memory."""
    image, tag = "demo/app", "1.0"

    def __init__(self, manifest, config, blobs=(), compressions=None):
        self._manifest = manifest
        self._config = json.dumps(config).encode() if config is not None else None
        self._blobs = list(blobs)
        self._compressions = compressions or [None] * len(self._blobs)

    def manifest(self):
        return self._manifest

    def config_bytes(self):
        return self._config

    def layers(self):
        diff_ids = json.loads(self._config)["rootfs"]["diff_ids"] if self._config else []
        return [LayerRef(index=i, name=str(i), open=lambda b=blob: io.BytesIO(b),
                         diff_id=diff_ids[i] if i < len(diff_ids) else None,
                         compression=self._compressions[i])
                for i, blob in enumerate(self._blobs)]


def manifest_for(config_bytes, layers, media_type="application/vnd.oci.image.manifest.v1+json"):
    return {"schemaVersion": 2, "mediaType": media_type,
            "config": {"digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
                       "size": len(config_bytes)},
            "layers": layers}


def test_info_with_manifest():
    config_bytes = json.dumps(CONFIG).encode()
    manifest = manifest_for(config_bytes, [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
         "digest": "sha256:" + "c" * 64, "size": 2000},
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
         "digest": "sha256:" + "d" * 64, "size": 3 * 1024 * 1024},
        {"mediaType": "application/x-weird", "digest": "sha256:" + "e" * 64, "size": 12}])
    data = info_mod.image_info(FakeSource(manifest, CONFIG))
    assert list(data) == ["image", "tag", "schema_version", "media_type", "config_digest",
                          "config_size", "layer_count", "total_compressed_size", "layers",
                          "architecture", "os", "variant", "created", "diff_ids",
                          "history_count", "empty_layer_count", "labels", "env",
                          "entrypoint", "cmd", "working_dir", "exposed_ports", "volumes",
                          "implementation"]
    assert data["total_compressed_size"] == 3 * 1024 * 1024 + 2012
    assert [layer["compression"] for layer in data["layers"]] == ["gzip", "zstd", "unknown"]
    assert list(data["layers"][0]) == ["index", "digest", "size", "media_type", "compression",
                                       "diff_id", "created_by"]
    assert "diff_id" not in data["layers"][2] and "created_by" not in data["layers"][2]
    rule = ("+---+------------------------------+------------------------------+--------+"
            "-------------+----------------------------------------------------+")
    assert info_mod.render_text(data).splitlines() == [
        "Image:         demo/app:1.0",
        "Media type:    application/vnd.oci.image.manifest.v1+json",
        "Schema:        v2",
        "Platform:      linux/arm64/v8",
        "Created:       2024-01-01T00:00:00Z",
        "Config digest: %s" % manifest["config"]["digest"],
        "Config size:   %d B" % len(config_bytes),
        "",
        "Layers: 3",
        "Total compressed size: 3.0 MB",
        "",
        rule,
        "| # | Compressed Digest            | DiffID                       | Size   | "
        "Compression | Created By                                         |",
        rule,
        "| 0 | sha256:cccccccccccccccccc... | sha256:aaaaaaaaaaaaaaaaaa... | 2.0 KB | "
        "gzip        | RUN x                                              |",
        "| 1 | sha256:dddddddddddddddddd... | sha256:bbbbbbbbbbbbbbbbbb... | 3.0 MB | "
        "zstd        | COPY z COPY z COPY z COPY z COPY z COPY z COPY z   |",
        "|   |                              |                              |        | "
        "            | COPY z COPY z COPY z                               |",
        "| 2 | sha256:eeeeeeeeeeeeeeeeee... |                              | 12 B   | "
        "unknown     |                                                    |",
        rule,
        "",
        "History: 3 entries (1 empty)",
        "",
        "Container Config:",
        "  Cmd:        ['sh']",
        "  Volumes:    /v",
    ]


def test_info_nothing_available():
    data = info_mod.image_info(FakeSource(None, None))
    assert data == {"image": "demo/app", "tag": "1.0",
                    "implementation": data["implementation"]}
    assert info_mod.render_text(data) == "Image:         demo/app:1.0\n\nLayers: 0"


def test_render_table_plain():
    assert info_mod.render_table(["#", "Name"], [[0, "a"], [10, "longer\ttab"]]) == "\n".join([
        "+----+-------------+",
        "| #  | Name        |",
        "+----+-------------+",
        "| 0  | a           |",
        "| 10 | longer  tab |",       # tabs expanded, as PrettyTable does
        "+----+-------------+",
    ])


def test_metadata_checks_with_manifest():
    config = dict(CONFIG, config={"ArgsEscaped": True})
    config_bytes = json.dumps(config).encode()
    manifest = manifest_for(config_bytes, [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "size": 2 * 1024 ** 3},
        {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 3},
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "size": 3}],
        media_type="application/vnd.docker.distribution.manifest.v2+json")
    report = check_mod.run_checks(FakeSource(manifest, config), fast=True)
    assert check_mod.render_text(report).splitlines() == [
        "Errors:",
        "  [layer-count] Manifest has 3 layers but config has 2 diff_ids",
        "  [history-count] History has 2 non-empty entries but image has 3 layers",
        "",
        "Warnings:",
        "  [zstd-compat] 2 layer(s) use zstd compression; Docker Engine < 20.10 and "
        "containerd < 1.5 cannot pull this image",
        "  [large-layer] Layer 0 is very large: 2.0 GB compressed",
        "  [args-escaped] config.ArgsEscaped is set (Docker-specific, deprecated in OCI spec)",
        "",
        "Info:",
        "  [schema-version] Manifest schemaVersion is 2",
        '  [rootfs-type] Config rootfs.type is "layers"',
        "  [config-descriptor] Config descriptor present (digest: %s, size: %d)"
        % (manifest["config"]["digest"], len(config_bytes)),
        "  [docker-media-type] Image uses Docker v2 media types; some OCI-only tooling may "
        "not handle this",
        "",
        "Check complete (fast (metadata only)): 2 error(s), 3 warning(s)",
    ]


def test_metadata_bad_schema_and_rootfs():
    config = {"rootfs": {"type": "foo", "diff_ids": []}}
    report = check_mod.run_checks(
        FakeSource({"schemaVersion": 1, "layers": []}, config), fast=True)
    assert report.results == [
        ("error", "schema-version", "Manifest schemaVersion is 1, expected 2"),
        ("error", "rootfs-type", "Config rootfs.type is 'foo', expected \"layers\""),
        ("info", "layer-count", "Layer count matches: 0 layers, 0 diff_ids"),
        ("error", "config-descriptor", "Manifest has no config descriptor"),
        ("info", "history-count", "No history entries present"),
    ]


def test_metadata_nothing_available():
    report = check_mod.run_checks(FakeSource(None, None))
    assert report.results == [("warning", "metadata",
                               "No manifest or config available; metadata checks skipped")]
    assert not report.has_errors


def test_full_checks_with_manifest():
    raw = ib.sample_layers()
    blobs = [ib.compress(raw[0], "gzip", multi=True), ib.compress(raw[1], "zstd", multi=True)]
    config = {"rootfs": {"type": "layers",
                         "diff_ids": ["sha256:" + hashlib.sha256(r).hexdigest() for r in raw[:2]]},
              "history": [{}, {}]}
    config_bytes = json.dumps(config).encode()
    layers = [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(blobs[0]),
               "digest": "sha256:" + hashlib.sha256(blobs[0]).hexdigest()},
              {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "size": len(blobs[1]),
               "digest": "sha256:" + hashlib.sha256(blobs[1]).hexdigest()}]
    manifest = manifest_for(config_bytes, layers)
    report = check_mod.run_checks(FakeSource(manifest, config, blobs, ["gzip", "zstd"]))
    got = [(sev, cid) for sev, cid, _m in report.results]
    assert ("info", "config-digest") in got and ("info", "config-size") in got
    # multi-member gzip / multi-frame zstd are read to the end (0.4.17 truncated them)
    assert [m for _s, c, m in report.results if c == "diff-id"] == [
        "Layer 0 diff_id verified", "Layer 1 diff_id verified"]
    assert report.errors == 0 and report.warnings == 1     # zstd-compat

    manifest["config"] = {"digest": "sha256:" + "0" * 64, "size": 3}
    report = check_mod.run_checks(FakeSource(manifest, config, blobs, ["gzip", "zstd"]))
    assert ("error", "config-digest", "Config digest mismatch: expected sha256:%s, got %s"
            % ("0" * 64, "sha256:" + hashlib.sha256(config_bytes).hexdigest())) in report.results
    assert ("error", "config-size", "Config size mismatch: expected 3, got %d"
            % len(config_bytes)) in report.results


# -- check on tarballs ----------------------------------------------------------------

CLEAN_FULL = "Check complete (full): 0 error(s), 0 warning(s)"
CLEAN_FAST = "Check complete (fast (metadata only)): 0 error(s), 0 warning(s)"


@pytest.mark.parametrize("layout, compression", LAYOUTS)
def test_check_clean(image, layout, compression):
    uri, _built = image(layout=layout, compression=compression)
    proc = occystrap("check", uri, check=True)
    assert proc.stdout.splitlines() == [
        "Info:",
        '  [rootfs-type] Config rootfs.type is "layers"',
        "  [history-count] History entries match: 3 non-empty entries for 3 layers",
        "  [diff-id] Layer 0 diff_id verified",
        "  [diff-id] Layer 1 diff_id verified",
        "  [diff-id] Layer 2 diff_id verified",
        "",
        CLEAN_FULL,
    ]
    fast = occystrap("check", "--fast", uri, check=True)
    assert fast.stdout.splitlines() == [
        "Info:",
        '  [rootfs-type] Config rootfs.type is "layers"',
        "  [history-count] History entries match: 3 non-empty entries for 3 layers",
        "",
        CLEAN_FAST,
    ]


def test_check_example_hello():
    proc = occystrap("check", "tar://examples/hello.tar", check=True)
    assert proc.stdout.splitlines()[-1] == CLEAN_FULL


def test_check_diff_id_mismatch(image):
    wrong = ["sha256:" + c * 64 for c in "012"]
    uri, built = image(config={"rootfs": {"diff_ids": wrong}})
    proc = occystrap("check", uri)
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout.splitlines()
    assert out[:4] == ["Errors:"] + [
        "  [diff-id] Layer %d diff_id mismatch: expected %s, got %s"
        % (i, short(wrong[i]), short(built["diff_ids"][i])) for i in range(3)]
    assert out[1] == ("  [diff-id] Layer 0 diff_id mismatch: expected "
                      "sha256:000000000000000000..., got %s" % short(built["diff_ids"][0]))
    assert out[-1] == "Check complete (full): 3 error(s), 0 warning(s)"
    # --fast reads no layer, so it cannot see the mismatch
    assert occystrap("check", "--fast", uri).returncode == 0


def test_check_corrupt_layer(image):
    layers = ib.sample_layers()
    uri, _built = image(layers=[layers[0], os.urandom(3000), layers[2]])
    proc = occystrap("check", uri)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == "Errors:"
    assert out[1].startswith("  [tar-format] Layer 1 is not a valid tar: ")
    assert out[2] == ""
    assert "  [diff-id] Layer 1 diff_id verified" in out   # the bytes are what the config says
    assert out[-1] == "Check complete (full): 1 error(s), 0 warning(s)"


def test_check_undecompressable_layers(image):
    layers = ib.sample_layers()
    gz = ib.compress(layers[1], "gzip")
    uri, _built = image(layers=[layers[0], b"\x1f\x8b" + os.urandom(500), gz[:len(gz) // 2]])
    proc = occystrap("check", uri)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stdout.splitlines() if line.startswith("  [tar-format]")]
    assert errors[0].startswith("  [tar-format] Layer 1 could not be decompressed: corrupt gzip")
    assert errors[1] == "  [tar-format] Layer 2 could not be decompressed: truncated gzip stream"
    assert proc.stdout.splitlines()[-1] == "Check complete (full): 2 error(s), 0 warning(s)"


def test_check_truncated_tar(image):
    layers = ib.sample_layers()
    uri, _built = image(layers=[layers[0][:700]])
    proc = occystrap("check", uri)
    assert proc.returncode == 1
    assert "  [tar-format] Layer 0 is not a valid tar: truncated tar stream" in proc.stdout


def test_check_member_findings(image):
    bad = ib.layer([
        ("file", "bin/su", b"x", {"mode": 0o4777}),
        ("file", "old", b"y", {"mtime": -5}),
        ("file", "etc/.wh.", b""),
        ("file", "etc/.wh.gone", b"notempty"),
        ("whiteout", "etc/fine"),
        ("opaque", "var"),
        ("file", "bin/sgid", b"x", {"mode": 0o2755}),
    ])
    uri, _built = image(layers=[bad, ib.layer([("file", "bin/su", b"z"), ("file", "old", b"q")])],
                        config={"history": None})
    proc = occystrap("check", uri)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "Errors:",
        "  [tar-timestamp] Layer 0: negative timestamp on old (mtime=-5)",
        "  [whiteout] Layer 0: empty whiteout target at etc/.wh.",
        "",
        "Warnings:",
        "  [tar-permissions] Layer 0: bin/su has setuid/setgid with world-writable (mode=4777)",
        "  [whiteout-size] Layer 0: whiteout etc/.wh.gone has non-zero size (8 bytes)",
        "",
        "Info:",
        '  [rootfs-type] Config rootfs.type is "layers"',
        "  [history-count] No history entries present",
        "  [diff-id] Layer 0 diff_id verified",
        "  [diff-id] Layer 1 diff_id verified",
        "  [duplicate-file] File 'bin/su' appears in layers [0, 1]",
        "  [duplicate-file] File 'old' appears in layers [0, 1]",
        "",
        "Check complete (full): 2 error(s), 2 warning(s)",
    ]


def test_check_many_duplicates(image):
    files = [("file", "f%02d" % i, b"a") for i in range(13)] + [("dir", "d"), ("symlink", "s", "x")]
    uri, _built = image(layers=[ib.layer(files), ib.layer(files)], config={"history": None})
    out = occystrap("check", uri, check=True).stdout.splitlines()
    dups = [line for line in out if line.startswith("  [duplicate-file]")]
    assert dups == ["  [duplicate-file] File 'f%02d' appears in layers [0, 1]" % i
                    for i in range(10)] + ["  [duplicate-file] ... and 3 more duplicate files"]


def test_check_history_mismatch(image):
    uri, _built = image(config={"history": [{"created_by": "only one"}]})
    proc = occystrap("check", "--fast", uri)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[:2] == [
        "Errors:", "  [history-count] History has 1 non-empty entries but image has 3 layers"]


def test_check_json(image):
    wrong = "sha256:" + "f" * 64
    good = ["sha256:" + hashlib.sha256(raw).hexdigest() for raw in ib.sample_layers()]
    uri, _built = image(config={"rootfs": {"diff_ids": [wrong] + good[1:]}})
    proc = occystrap("-O", "json", "check", uri)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert list(data) == ["image", "tag", "mode", "errors", "warnings", "results"]
    assert data["image"] == "example.com/demo/app" and data["tag"] == "1.0"
    assert data["mode"] == "full" and data["errors"] == 1 and data["warnings"] == 0
    assert all(list(r) == ["severity", "check", "message"] for r in data["results"])
    assert {"severity": "error", "check": "diff-id",
            "message": "Layer 0 diff_id mismatch: expected %s, got %s"
                       % (short(wrong), short(good[0]))} in data["results"]
    fast = json.loads(occystrap("-O", "json", "check", "--fast", uri, check=True).stdout)
    assert fast["mode"] == "fast" and fast["errors"] == 0
    assert [r["check"] for r in fast["results"]] == ["rootfs-type", "history-count"]


def test_check_parallel_and_twins_agree(image):
    bad = ib.layer([("file", "a", b"x", {"mode": 0o6777}), ("file", "b", b"y", {"mtime": -1})])
    uri, _built = image(layers=[bad] + ib.sample_layers() + [bad], config={"history": None})
    serial = occystrap("-j", "1", "check", uri)
    parallel = occystrap("-j", "8", "check", uri)
    pure = occystrap("-j", "3", "check", uri, pure=True)
    assert serial.returncode == parallel.returncode == pure.returncode == 1
    assert serial.stdout == parallel.stdout == pure.stdout
    assert "  [duplicate-file] File 'a' appears in layers [0, 4]" in serial.stdout


def test_check_missing_file():
    proc = occystrap("check", "tar:///nonexistent/image.tar", check=False)
    assert "Error: No such file: /nonexistent/image.tar" in proc.stderr
