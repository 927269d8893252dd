"""The CLI against registries that need TLS trust and credentials: HTTP Basic
(0.4.17 had none), Bearer tokens on pull (0.4.17 failed with 401), CA files."""
import json
import os

import pytest

from tests import imagebuilder as ib
from tests import peers
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


HELPER = """#!/bin/sh
# docker-credential-helpers protocol: server on stdin, JSON on stdout
read server
case "$server" in
  %(host)s) echo '{"ServerURL": "%(host)s", "Username": "testuser", "Secret": "testpass"}';;
  *) echo 'credentials not found in native keychain'; exit 1;;
esac
"""


def _helper_env(tmp_path, name, script, config):
    """PATH with docker-credential-NAME (script) first, DOCKER_CONFIG holding config."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    helper = bin_dir / ("docker-credential-" + name)
    helper.write_text(script)
    helper.chmod(0o755)
    config_dir = tmp_path / ("config-" + name)
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps(config))
    return {"PATH": "%s:%s" % (bin_dir, os.environ["PATH"]), "DOCKER_CONFIG": str(config_dir)}


def test_credential_helpers(image, tmp_path, registry_basic):
    env = _helper_env(tmp_path, "occytest", HELPER % {"host": registry_basic.url},
                      {"credsStore": "occytest"})
    _roundtrip(image, tmp_path, "%s/auth/helper:1" % registry_basic.url, "--insecure", env=env)
    # credHelpers names a helper per registry, over credsStore
    env = _helper_env(tmp_path, "occyhost", HELPER % {"host": registry_basic.url},
                      {"credsStore": "not-installed",
                       "credHelpers": {registry_basic.url: "occyhost"}})
    occystrap("--insecure", "info", "registry://%s/auth/helper:1" % registry_basic.url,
              env=env, check=True)


def test_failing_credential_helper_is_one_error_line(image, tmp_path, registry_basic):
    env = _helper_env(tmp_path, "occybroken",
                      "#!/bin/sh\necho 'keyring is locked' >&2\nexit 2\n",
                      {"credsStore": "occybroken"})
    proc = occystrap("--insecure", "process", "tar://%s" % image,
                     "registry://%s/auth/broken:1" % registry_basic.url, env=env, check=False)
    assert ("Error: credential helper docker-credential-occybroken failed for %s: keyring "
            "is locked" % registry_basic.url) in proc.stderr


def test_source_and_destination_credentials(image, tmp_path, registry_basic):
    """A copy between registries that take different users: --src-*/--dest-* each
    override the shared --username/--password on their side."""
    with peers.Registry(htpasswd={"other": "otherpass"}) as other:
        src = "registry://%s/auth/two:1" % registry_basic.url
        dest = "registry://%s/auth/two:1" % other.url
        occystrap("--insecure", "--username", "testuser", "--password", "testpass",
                  "process", "tar://%s" % image, src, check=True)
        shared = occystrap("--insecure", "--username", "testuser", "--password", "testpass",
                           "process", src, dest, check=False)
        assert "authentication failed" in shared.stderr
        occystrap("--insecure", "--src-username", "testuser", "--src-password", "testpass",
                  "--dest-username", "other", "--dest-password", "otherpass",
                  "process", src, dest, check=True)
        # reading from `other`, --src-* (wrong there) win over the right --username
        wrong = occystrap("--insecure", "--username", "other", "--password", "otherpass",
                          "--src-username", "testuser", "--src-password", "testpass",
                          "process", dest, "tar://%s" % (tmp_path / "two.tar"), check=False)
        assert "authentication failed" in wrong.stderr
        env = {"OCCYSTRAP_SRC_USERNAME": "other", "OCCYSTRAP_SRC_PASSWORD": "otherpass"}
        occystrap("--insecure", "process", dest, "tar://%s" % (tmp_path / "back.tar"),
                  env=env, check=True)
        occystrap("check", "tar://%s" % (tmp_path / "back.tar"), check=True)
