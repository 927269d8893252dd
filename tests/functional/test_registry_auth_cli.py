"""The CLI against registries that need TLS trust and credentials: HTTP Basic
(0.4.17 had none), Bearer tokens on pull (0.4.17 failed with 401), CA files."""
import json
import os

import pytest

from tests import imagebuilder as ib
from tests.cli import occystrap

pytestmark = pytest.mark.functional


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in.tar"
    ib.build_image(path, ib.sample_layers())
    return path


def _roundtrip(image, tmp_path, ref, *flags, env=None):
    occystrap(*flags, "process", "tar://%s" % image, "registry://%s" % ref,
              "-f", "normalize-timestamps", env=env, check=True)
    back = tmp_path / "back.tar"
    occystrap(*flags, "process", "registry://%s" % ref, "tar://%s" % back, env=env, check=True)
    occystrap("check", "tar://%s" % back, check=True)


def test_basic_auth_push_and_pull(image, tmp_path, registry_basic):
    _roundtrip(image, tmp_path, "%s/auth/basic:1" % registry_basic.url, "--insecure",
               "--username", "testuser", "--password", "testpass")


def test_basic_auth_from_environment_and_uri(image, tmp_path, registry_basic):
    env = {"OCCYSTRAP_USERNAME": "testuser", "OCCYSTRAP_PASSWORD": "testpass"}
    _roundtrip(image, tmp_path, "%s/auth/env:1" % registry_basic.url, "--insecure", env=env)
    ref = "%s/auth/uri:1?username=testuser&password=testpass" % registry_basic.url
    occystrap("--insecure", "process", "tar://%s" % image, "registry://%s" % ref, check=True)


def test_docker_config_credentials(image, tmp_path, registry_basic):
    config = tmp_path / "docker"
    config.mkdir()
    import base64
    auth = base64.b64encode(b"testuser:testpass").decode()
    (config / "config.json").write_text(json.dumps({"auths": {registry_basic.url: {"auth": auth}}}))
    _roundtrip(image, tmp_path, "%s/auth/dockercfg:1" % registry_basic.url, "--insecure",
               env={"DOCKER_CONFIG": str(config)})


def test_wrong_password_is_one_error_line(image, registry_basic):
    proc = occystrap("--insecure", "--username", "testuser", "--password", "nope", "process",
                     "tar://%s" % image, "registry://%s/auth/bad:1" % registry_basic.url,
                     check=False)
    assert "authentication failed" in proc.stderr
    assert "nope" not in proc.stderr


def test_token_auth_push_and_pull(image, tmp_path, registry_token, token_server):
    _roundtrip(image, tmp_path, "%s/auth/token:1" % registry_token.url, "--insecure",
               "--username", "testuser", "--password", "testpass")


def test_tls_with_ca_file_and_ssl_cert_file(image, tmp_path, registry_tls):
    _roundtrip(image, tmp_path, "%s/auth/tls:1" % registry_tls.url,
               "--ca-file", registry_tls.ca_file)
    _roundtrip(image, tmp_path, "%s/auth/tls2:1" % registry_tls.url,
               env={"SSL_CERT_FILE": registry_tls.ca_file})
    proc = occystrap("info", "registry://%s/auth/tls:1" % registry_tls.url, check=False,
                     env={"SSL_CERT_FILE": os.devnull})
    assert "certificate" in proc.stderr.lower()
