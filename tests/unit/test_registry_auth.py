"""Registry references, WWW-Authenticate parsing and credential lookup (no network).

0.4.17 left `user:pass@` in the host, ignored digests, used a strict Bearer regex
(realm then service, no spaces, nothing else) and had no Docker config support.
"""
import base64
import email.utils
import json
import os
import re

import pytest

from occystrap.errors import CredentialError, OptionError, URIParseError
from occystrap.transports.registry.auth import (docker_config_credentials, parse_challenge,
                                                 parse_challenges, resolve_credentials)
from occystrap.transports.registry.client import RateLimiter, retry_after_seconds
from occystrap.transports.registry.reference import Reference, parse_reference

DIGEST = "sha256:" + "ab" * 32


# -- references ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, host, repository, tag, digest, reference, shown", [
    ("127.0.0.1:5000/foo:bar", "127.0.0.1:5000", "foo", "bar", None, "bar",
     "127.0.0.1:5000/foo:bar"),
    ("127.0.0.1:5055/demo/app:1.0", "127.0.0.1:5055", "demo/app", "1.0", None, "1.0",
     "127.0.0.1:5055/demo/app:1.0"),
    ("quay.io/org/img", "quay.io", "org/img", "latest", None, "latest",
     "quay.io/org/img:latest"),
    ("localhost:5000/a/b/c@" + DIGEST, "localhost:5000", "a/b/c", "latest", DIGEST, DIGEST,
     "localhost:5000/a/b/c@" + DIGEST),
    ("reg.example/x:v1@" + DIGEST, "reg.example", "x", "v1", DIGEST, DIGEST,
     "reg.example/x@" + DIGEST),
    ("[::1]:5000/x:y", "[::1]:5000", "x", "y", None, "y", "[::1]:5000/x:y"),
    ("reg.example/a.b_c__d--e/f-g:V_1.2-rc", "reg.example", "a.b_c__d--e/f-g", "V_1.2-rc",
     None, "V_1.2-rc", "reg.example/a.b_c__d--e/f-g:V_1.2-rc"),
    ("registry://reg.example/x:y", "reg.example", "x", "y", None, "y", "reg.example/x:y"),
])
def test_parse_reference(text, host, repository, tag, digest, reference, shown):
    ref = parse_reference(text)
    assert (ref.host, ref.repository, ref.tag, ref.digest) == (host, repository, tag, digest)
    assert ref.reference == reference
    assert str(ref) == shown
    assert ref.api_host == host
    assert ref.username is None and ref.password is None


def test_reference_is_frozen_and_positional():
    ref = Reference("h:1", "a/b", "t", None)
    assert ref.reference == "t"
    with pytest.raises(Exception):
        ref.tag = "other"
    assert Reference("h", "r").tag == "latest"


def test_userinfo_is_split_off_and_hidden():
    ref = parse_reference("alice:s%40cr%3At@127.0.0.1:5000/team/app:1")
    assert ref.host == "127.0.0.1:5000"
    assert (ref.username, ref.password) == ("alice", "s@cr:t")
    assert "s@cr" not in repr(ref) and "s@cr" not in str(ref)
    assert ref == parse_reference("127.0.0.1:5000/team/app:1")
    ref = parse_reference("bob@reg.example/x")
    assert (ref.username, ref.password, ref.host) == ("bob", None, "reg.example")


@pytest.mark.parametrize("text, repository", [
    ("docker.io/busybox:1.36", "library/busybox"),
    ("index.docker.io/busybox", "library/busybox"),
    ("docker.io/someone/tool:2", "someone/tool"),
    ("registry-1.docker.io/alpine", "library/alpine"),
])
def test_docker_hub(text, repository):
    ref = parse_reference(text)
    assert ref.api_host == "registry-1.docker.io"
    assert ref.repository == repository
    assert ref.host == text.split("/", 1)[0]


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("127.0.0.1:5000", "no repository"),
    ("127.0.0.1:5000/", "no repository"),
    ("127.0.0.1:5000/:tag", "repository"),
    ("reg.example/foo:bad/tag", "repository"),
    ("reg.example/foo:-bad", "bad tag"),
    ("reg.example/foo:" + "a" * 129, "bad tag"),
    ("reg.example/foo:t@g", "digest"),
    ("reg.example/Foo:1", "lowercase"),
    ("reg.example/foo//bar", "bad repository"),
    ("reg.example/foo@sha256:abc", "malformed sha256 digest"),
    ("reg.example/foo@sha256:" + "AB" * 32, "malformed sha256 digest"),
    ("reg.example/foo@md5:" + "ab" * 16, "unsupported digest algorithm"),
    ("reg.example/foo@" + "ab" * 32, "no algorithm"),
    ("bad_host!/foo", "bad registry host"),
    ("reg.example:port/foo", "bad registry host"),
    ("user:pw@/foo", "no registry host"),
])
def test_bad_references(text, fragment):
    with pytest.raises(URIParseError) as info:
        parse_reference(text)
    assert fragment in str(info.value)
    assert "expected HOST" in str(info.value) or "empty" in str(info.value)


def test_bad_reference_message_hides_password():
    with pytest.raises(URIParseError) as info:
        parse_reference("alice:hunter2@reg.example/Bad")
    assert "hunter2" not in str(info.value)
    assert "alice:***@" in str(info.value)


# -- challenges ---------------------------------------------------------------------------

REALM = "https://auth.example.com/token"


@pytest.mark.parametrize("header", [
    'Bearer realm="%s",service="registry.example.com",scope="repository:a/b:pull"' % REALM,
    'Bearer service="registry.example.com",scope="repository:a/b:pull",realm="%s"' % REALM,
    'Bearer scope="repository:a/b:pull", realm="%s" ,  service="registry.example.com"'
    % REALM,
    'bearer   REALM = "%s",Service=registry.example.com,scope="repository:a/b:pull"' % REALM,
])
def test_bearer_any_order_and_spacing(header):
    scheme, params = parse_challenge(header)
    assert scheme == "bearer"
    assert params == {"realm": REALM, "service": "registry.example.com",
                      "scope": "repository:a/b:pull"}


def test_quoted_values_may_hold_commas_and_escapes():
    scheme, params = parse_challenge(
        'Bearer realm="https://a.example/token?x=1,2",service="s",'
        'scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope",'
        'note="say \\"hi\\", twice"')
    assert scheme == "bearer"
    assert params["realm"] == "https://a.example/token?x=1,2"
    assert params["scope"] == "repository:a/b:pull,push repository:c:pull"
    assert params["error"] == "insufficient_scope"
    assert params["note"] == 'say "hi", twice'


def test_basic_challenge():
    assert parse_challenge('Basic realm="test-realm"') == ("basic", {"realm": "test-realm"})
    assert parse_challenge("Basic") == ("basic", {})
    assert parse_challenge('BASIC realm=plain, charset="UTF-8"') == (
        "basic", {"realm": "plain", "charset": "UTF-8"})


def test_several_challenges_in_one_header():
    challenges = parse_challenges(
        'Negotiate abc==, Basic realm="r", Bearer realm="%s",service="s"' % REALM)
    assert [c[0] for c in challenges] == ["negotiate", "basic", "bearer"]
    assert challenges[0][1] == {None: "abc=="}
    assert challenges[2][1] == {"realm": REALM, "service": "s"}


def test_no_challenge():
    assert parse_challenge("") == ("", {})
    assert parse_challenge(None) == ("", {})
    assert parse_challenges(",, ,") == []


# -- credentials --------------------------------------------------------------------------

def _auth(user, password):
    return base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


@pytest.fixture
def no_docker_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("HOME", str(tmp_path))


def test_precedence(tmp_path, no_docker_config):
    config = {"auths": {"reg.example": {"auth": _auth("cfg", "cfgpw")}}}
    assert resolve_credentials("reg.example", "cli", "clipw", "uri", "uripw",
                               docker_config=config) == ("uri", "uripw")
    assert resolve_credentials("reg.example", "cli", "clipw",
                               docker_config=config) == ("cli", "clipw")
    assert resolve_credentials("reg.example", docker_config=config) == ("cfg", "cfgpw")
    assert resolve_credentials("other.example", docker_config=config) == (None, None)
    assert resolve_credentials("reg.example") == (None, None)      # no config file at all
    # user@host in the URI with the password from --password / $OCCYSTRAP_PASSWORD
    assert resolve_credentials("reg.example", None, "clipw", "uri", None) == ("uri", "clipw")
    # A lone --password (0.4.17's quay token) is no Basic credential.
    assert resolve_credentials("reg.example", None, "pw",
                               docker_config=config) == ("cfg", "cfgpw")


@pytest.mark.parametrize("key", [
    "127.0.0.1:5000", "https://127.0.0.1:5000", "http://127.0.0.1:5000/v1/",
    "https://127.0.0.1:5000/v2/",
])
def test_docker_config_key_forms(tmp_path, key):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"other:1": {"auth": _auth("x", "y")},
                                          key: {"auth": _auth("me", "p:w")}}}))
    assert docker_config_credentials("127.0.0.1:5000", str(path)) == ("me", "p:w")
    assert docker_config_credentials("127.0.0.1:5001", str(path)) is None


def test_docker_config_username_password_fields():
    config = {"auths": {"reg.example": {"username": "u", "password": "p"}}}
    assert docker_config_credentials("REG.example", config) == ("u", "p")


def test_docker_hub_aliases():
    config = {"auths": {"https://index.docker.io/v1/": {"auth": _auth("hub", "hubpw")}}}
    for host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert docker_config_credentials(host, config) == ("hub", "hubpw")
    assert docker_config_credentials("quay.io", config) is None


def test_docker_config_from_environment(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text(json.dumps(
        {"auths": {"reg.example": {"auth": _auth("env", "envpw")}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "cfg"))
    assert resolve_credentials("reg.example") == ("env", "envpw")
    monkeypatch.delenv("DOCKER_CONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps(
        {"auths": {"https://reg.example": {"auth": _auth("home", "homepw")}}}))
    assert resolve_credentials("reg.example") == ("home", "homepw")


@pytest.mark.parametrize("content", [
    "not json", json.dumps([1, 2]), json.dumps({"auths": []}),
    json.dumps({"auths": {"reg.example": {"auth": "!!!notbase64"}}}),
    json.dumps({"auths": {"reg.example": {"auth": _auth("nocolon", "")[:-4]}}}),
    json.dumps({"auths": {"reg.example": "junk"}}),
    json.dumps({"credsStore": "", "credHelpers": [], "auths": {"reg.example": {}}}),
])
def test_broken_docker_config_is_ignored(tmp_path, content):
    path = tmp_path / "config.json"
    path.write_text(content)
    assert resolve_credentials("reg.example", docker_config=str(path)) == (None, None)


# -- credential helpers -----------------------------------------------------------------

HELPER = """#!/bin/sh
read server
echo "$server" >> "$(dirname "$0")/asked"
case "$server" in
  reg.example) echo '{"ServerURL": "reg.example", "Username": "helped", "Secret": "s3"}';;
  https://index.docker.io/v1/) echo '{"Username": "hub", "Secret": "hubs"}';;
  token.example) echo '{"Username": "<token>", "Secret": "refresh"}';;
  junk.example) echo 'not json';;
  broken.example) echo 'helper exploded' >&2; exit 3;;
  *) echo 'credentials not found in native keychain'; exit 1;;
esac
"""


@pytest.fixture
def helper(tmp_path, monkeypatch):
    """docker-credential-occytest on PATH; returns the servers it was asked for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker-credential-occytest"
    script.write_text(HELPER)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))

    def asked():
        path = bin_dir / "asked"
        return path.read_text().split() if path.exists() else []
    return asked


def test_creds_store_and_cred_helpers(helper):
    store = {"credsStore": "occytest",
             "auths": {"other.example": {"auth": _auth("file", "filepw")}}}
    assert docker_config_credentials("reg.example", store) == ("helped", "s3")
    assert docker_config_credentials("docker.io", store) == ("hub", "hubs")
    # the helper has nothing: the auths entry is next, then anonymous
    assert docker_config_credentials("other.example", store) == ("file", "filepw")
    assert docker_config_credentials("none.example", store) is None
    assert docker_config_credentials("token.example", store) is None   # identity token
    assert helper() == ["reg.example", "https://index.docker.io/v1/", "other.example",
                        "none.example", "token.example"]
    per_host = {"credsStore": "missing-store", "credHelpers": {"REG.example": "occytest"}}
    assert docker_config_credentials("reg.example", per_host) == ("helped", "s3")
    # explicit credentials never run a helper
    assert resolve_credentials("reg.example", "cli", "pw", docker_config=store) == ("cli", "pw")
    assert len(helper()) == 6


@pytest.mark.parametrize("config, host, message", [
    ({"credsStore": "occytest"}, "broken.example",
     "credential helper docker-credential-occytest failed for broken.example: "
     "helper exploded"),
    ({"credsStore": "occytest"}, "junk.example", "answered junk.example with no Username"),
    ({"credHelpers": {"reg.example": "not-installed"}}, "reg.example",
     "docker-credential-not-installed (named in the Docker config) is not on PATH"),
    ({"credsStore": "../evil"}, "reg.example", "invalid credential helper name"),
])
def test_failing_helper_is_an_error(helper, config, host, message):
    with pytest.raises(CredentialError, match=re.escape(message)):
        docker_config_credentials(host, config)


# -- retry timing helpers -----------------------------------------------------------------

def test_retry_after():
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("") is None
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("3600") == 60.0                     # capped
    assert retry_after_seconds("soon") is None
    now = 1_700_000_000
    assert retry_after_seconds(email.utils.formatdate(now + 5, usegmt=True), now=now) == 5.0
    assert retry_after_seconds(email.utils.formatdate(now - 5, usegmt=True), now=now) == 0.0
    assert retry_after_seconds(email.utils.formatdate(now + 999, usegmt=True), now=now) == 60.0


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf"), 1e-9, 2e6])
def test_rate_limiter_rejects_nonsense(rate):
    with pytest.raises(OptionError, match="rate limit must be from 0.01 to 1000000"):
        RateLimiter(rate)
