"""The 12 deprecated commands (spec A.3): help texts, and how their arguments become the
URIs and filter specs of the modern command.  Real runs are in tests/functional."""
import os
import re

import pytest
from click.testing import CliRunner

from occystrap.cli import cli, legacy
from occystrap.filters import build_filter
from occystrap.uri import parse_filter, parse_uri
from tests import imagebuilder as ib
from tests.cli import occystrap

# command -> (arguments in the usage line, options, the modern command it names)
COMMANDS = {
    "fetch-to-tarfile": ("REGISTRY IMAGE TAG TARFILE", ["--normalize-timestamps", "--timestamp"],
                         "process registry://REGISTRY/IMAGE:TAG tar://TARFILE"),
    "fetch-to-extracted": ("REGISTRY IMAGE TAG PATH", ["--use-unique-names", "--expand"],
                           "process registry://REGISTRY/IMAGE:TAG dir://PATH"),
    "fetch-to-oci": ("REGISTRY IMAGE TAG PATH", [],
                     "process registry://REGISTRY/IMAGE:TAG oci://PATH"),
    "fetch-to-mounts": ("REGISTRY IMAGE TAG PATH", [],
                        "process registry://REGISTRY/IMAGE:TAG mounts://PATH"),
    "tarfile-to-extracted": ("TARFILE PATH", ["--use-unique-names", "--expand"],
                             "process tar://TARFILE dir://PATH"),
    "docker-to-tarfile": ("IMAGE TAG TARFILE",
                          ["--socket", "--normalize-timestamps", "--timestamp"],
                          "process 'docker://IMAGE:TAG?socket=SOCKET' tar://TARFILE"),
    "docker-to-extracted": ("IMAGE TAG PATH", ["--socket", "--use-unique-names", "--expand"],
                            "process 'docker://IMAGE:TAG?socket=SOCKET' dir://PATH"),
    "docker-to-oci": ("IMAGE TAG PATH", ["--socket"],
                      "process 'docker://IMAGE:TAG?socket=SOCKET' oci://PATH"),
    "search-layers": ("REGISTRY IMAGE TAG PATTERN", ["--regex", "--script-friendly"],
                      "search registry://REGISTRY/IMAGE:TAG PATTERN"),
    "search-layers-tarfile": ("TARFILE PATTERN", ["--regex", "--script-friendly"],
                              "search tar://TARFILE PATTERN"),
    "search-layers-docker": ("IMAGE TAG PATTERN", ["--socket", "--regex", "--script-friendly"],
                             "search 'docker://IMAGE:TAG?socket=SOCKET' PATTERN"),
    "recreate-image": ("PATH IMAGE TAG TARFILE", ["--normalize-timestamps", "--timestamp"],
                       "process 'dir://PATH?image=IMAGE&tag=TAG' tar://TARFILE"),
}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_group_help_lists_every_legacy_command_as_deprecated():
    text = run("--help").output
    lines = " ".join(text.split())                 # undo click's wrapping
    for name in COMMANDS:
        after = lines.split(" %s " % name, 1)[1]
        assert after.split(" (DEPRECATED)", 1)[0].count(" ") < 12, name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_help(name):
    usage, options, modern = COMMANDS[name]
    result = run(name, "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "Usage: cli %s [OPTIONS] %s" % (name, usage) in text \
        or "Usage: occystrap %s [OPTIONS] %s" % (name, usage) in text
    assert "(DEPRECATED)" in text
    assert "Use instead: occystrap %s" % modern in text
    listed = set(re.findall(r"(?<!\S)(--[a-z][a-z-]*)", text)) - {"--help"}
    assert listed == set(options)
    if "--socket" in options:
        assert "(default: $DOCKER_HOST, else /var/run/docker.sock)" in text


# -- URI and filter mapping -------------------------------------------------------------

def test_registry_uri():
    uri = parse_uri(legacy.registry_uri("127.0.0.1:5000", "demo/app", "1.0"))
    assert (uri.scheme, uri.image_and_tag()) == ("registry", ("127.0.0.1:5000/demo/app", "1.0"))
    digest = "sha256:" + "a" * 64
    uri = parse_uri(legacy.registry_uri("example.com", "app", digest))
    assert uri.image_and_tag() == ("example.com/app", digest)


def test_docker_uri_carries_the_socket():
    socket = "/tmp/a dir/with?odd#name.sock"
    uri = parse_uri(legacy.docker_uri("example.com/app", "2", socket))
    assert uri.scheme == "docker"
    assert uri.image_and_tag() == ("example.com/app", "2")
    assert uri.options == {"socket": socket}
    assert parse_uri(legacy.docker_uri("example.com/app", "2", None)).options == {}


@pytest.mark.parametrize("path", ["out.tar", "sub/out.tar", "/abs/out.tar", "localhost/x.tar",
                                  "we?ird#name%20.tar"])
def test_path_uris_keep_the_path(path, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    uri = parse_uri(legacy.tar_uri(path))
    assert (uri.scheme, uri.path, uri.options) == ("tar", os.path.abspath(path), {})


@pytest.mark.parametrize("unique, expand, options", [
    (False, False, {}), (True, False, {"unique_names": True}),
    (False, True, {"expand": True}), (True, True, {"unique_names": True, "expand": True})])
def test_dir_uri_options(unique, expand, options):
    uri = parse_uri(legacy.dir_uri("/data/out", unique, expand))
    assert (uri.scheme, uri.path, uri.options) == ("dir", "/data/out", options)


def test_recreate_source_keeps_the_tag_as_typed():
    uri = parse_uri(legacy.recreate_source_uri("/data/d", "example.com/demo/app", "1"))
    assert uri.options["tag"] is True                  # what the URI grammar makes of it
    assert uri.raw == {"image": "example.com/demo/app", "tag": "1"}


@pytest.mark.parametrize("normalize, timestamp, specs", [
    (False, 0, []), (False, 99, []),
    (True, 0, ["normalize-timestamps:ts=0"]), (True, 1000, ["normalize-timestamps:ts=1000"])])
def test_timestamp_filters(normalize, timestamp, specs):
    assert legacy.timestamp_filters(normalize, timestamp) == specs
    for spec in specs:
        parsed = parse_filter(spec)
        assert parsed.name == "normalize-timestamps"
        assert parsed.raw == {"ts": str(timestamp)}
        build_filter(spec)                              # the modern filter accepts it


# -- running ------------------------------------------------------------------------------

def test_warning_comes_first_then_one_error_line(tmp_path):
    proc = occystrap("tarfile-to-extracted", tmp_path / "nosuch.tar", tmp_path / "out",
                     check=False)
    lines = proc.stderr.splitlines()
    assert lines[0] == "DeprecationWarning: The command 'tarfile-to-extracted' is deprecated."
    assert lines[-1] == "Error: No such file: %s" % (tmp_path / "nosuch.tar")
    assert not (tmp_path / "out").exists()


def test_no_summary_and_no_verify(tmp_path):
    src = tmp_path / "in.tar"
    ib.build_image(src, ib.sample_layers())
    proc = occystrap("tarfile-to-extracted", src, tmp_path / "out", check=True)
    assert "Summary:" not in proc.stderr and "verif" not in proc.stderr
    assert proc.stdout == ""
    modern = occystrap("process", "tar://%s" % src, "dir://%s" % (tmp_path / "new"), check=True)
    assert "verified OK" in modern.stderr


def test_missing_argument_is_a_usage_error():
    proc = occystrap("fetch-to-tarfile", "127.0.0.1:1", "img", "1")
    assert proc.returncode == 2
    assert "Missing argument 'TARFILE'" in proc.stderr
