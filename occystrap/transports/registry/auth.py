"""Registry authentication helpers: WWW-Authenticate parsing and credential lookup.

0.4.17 matched challenges with the strict regex `Bearer realm="…",service="…"` (B.8),
so a registry that sent `scope=` first, a space after a comma, or a comma inside a
quoted value fell through to an unexplained 401, and Basic-only registries (htpasswd)
did not work at all.  The grammar here is RFC 7235 section 4.1 / 2.1:

    challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param = token BWS "=" BWS ( token / quoted-string )

A header (or several joined with ", ") may carry several challenges; a new one starts
at a token that is not followed by "=".
"""
import base64
import binascii
import logging
import os
import re
import subprocess

from ...errors import CredentialError
from ...jsonparse import parse_json
from .reference import DOCKER_HUB_HOSTS

LOG = logging.getLogger(__name__)

HELPER_TIMEOUT = 60.0           # a helper may unlock a keyring; it must not hang us
HUB_SERVER = "https://index.docker.io/v1/"  # the key docker login uses for Docker Hub

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_SPACE = re.compile(r"[ \t]*")


def _skip(text, pos, chars=" \t,"):
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def parse_challenges(header):
    """Every challenge in a WWW-Authenticate value, in order: [(scheme, params)].

    The scheme is lower-cased ("bearer", "basic"), as are parameter names (RFC 7235:
    both are case-insensitive); values are unquoted.  Unparseable trailing text is
    ignored rather than raised: a sloppy header must not hide a usable challenge.
    """
    challenges = []
    text = header or ""
    pos = _skip(text, 0)
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            break
        scheme, pos = match.group(0).lower(), match.end()
        params = {}
        challenges.append((scheme, params))
        pos = _SPACE.match(text, pos).end()
        # token68 form (e.g. `Negotiate abc==`): keep it under a None key.
        t68 = _TOKEN68.match(text, pos)
        if t68:
            end = _SPACE.match(text, t68.end()).end()
            if end >= len(text) or text[end] == ",":
                params[None] = t68.group(0)
                pos = _skip(text, end)
                continue
        while True:
            pos = _skip(text, pos)
            if not _is_param(text, pos):
                break                       # next challenge (or the end)
            name = _TOKEN.match(text, pos)
            pos = _SPACE.match(text, name.end()).end() + 1     # past "="
            pos = _SPACE.match(text, pos).end()
            quoted = _QUOTED.match(text, pos)
            if quoted:
                value = re.sub(r"\\(.)", r"\1", quoted.group(1))
                pos = quoted.end()
            else:
                bare = re.compile(r"[^,]*").match(text, pos)
                value = bare.group(0).strip()
                pos = bare.end()
            params[name.group(0).lower()] = value
    return challenges


def _is_param(text, pos):
    """True if an `name=value` auth-param starts at pos (not a new scheme)."""
    name = _TOKEN.match(text, pos)
    if not name:
        return False
    after = _SPACE.match(text, name.end()).end()
    return after < len(text) and text[after] == "=" and not text.startswith("==", after)


def parse_challenge(header):
    """(scheme, params) of the first challenge in a WWW-Authenticate value.

    `Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull,push"`
    gives ("bearer", {"realm": ..., "service": "reg", "scope": "repository:a:pull,push"})
    whatever the order of the parameters.  ("", {}) when there is none.
    """
    challenges = parse_challenges(header)
    return challenges[0] if challenges else ("", {})


# -- credentials -----------------------------------------------------------------------

def resolve_credentials(host, username=None, password=None, uri_username=None,
                        uri_password=None, docker_config=None):
    """(username, password) to use for `host`, or (None, None) for anonymous access.

    Precedence: the URI's userinfo or ?username= (per image, so source and destination
    can differ), then the command line's (connect passes --src-/--dest-username over
    --username; click has already folded in the environment variables), then the
    Docker client config for the host (credential helpers, then `auths`).  A source
    counts only when it names a user; a URI user without a password takes the explicit
    password (`registry://me@host/x` + $OCCYSTRAP_PASSWORD).
    `docker_config` may be a path or an already loaded dict; by default it is
    $DOCKER_CONFIG/config.json or ~/.docker/config.json.
    """
    if uri_username:
        return uri_username, uri_password if uri_password is not None else (password or "")
    if username:
        return username, password or ""
    found = docker_config_credentials(host, docker_config)
    return found if found else (None, None)


def default_docker_config_path():
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(
        os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def _normalise_host(key):
    """`https://index.docker.io/v1/` -> `index.docker.io`; `Host:5000` -> `host:5000`."""
    key = key.strip().lower()
    if "://" in key:
        key = key.split("://", 1)[1]
    return key.split("/", 1)[0]


def _same_registry(key, host):
    key, host = _normalise_host(key), _normalise_host(host)
    if key == host:
        return True
    return key in DOCKER_HUB_HOSTS and host in DOCKER_HUB_HOSTS


def docker_config_credentials(host, docker_config=None):
    """(user, password) for `host` from a Docker client config, or None.

    As the docker CLI does: a credential helper named for the host in `credHelpers`,
    else the `credsStore` helper, is asked first (helper_credentials); when it has
    nothing for the host (or there is none), the `auths` entry is used.  An entry holds
    `auth` (base64 of "user:password", what `docker login` writes) or separate
    `username`/`password`.  An unreadable or malformed file is logged and ignored: it
    must not break anonymous access.  A helper that fails is an error, though:
    silently pulling anonymously would hide why a private image is "not found".
    """
    config = _load_docker_config(docker_config)
    if not isinstance(config, dict):
        return None
    helper = _helper_for(config, host)
    if helper:
        found = helper_credentials(helper, HUB_SERVER if _is_hub(host) else host)
        if found:
            return found
    return _auths_credentials(config, host)


def _load_docker_config(docker_config):
    if docker_config is not None and not isinstance(docker_config, (str, os.PathLike)):
        return docker_config
    path = docker_config or default_docker_config_path()
    try:
        with open(path, "rb") as f:
            return parse_json(f.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        LOG.warning("ignoring Docker config %s: %s", path, exc)
        return None


def _is_hub(host):
    return _normalise_host(host) in DOCKER_HUB_HOSTS


def _matching_keys(mapping, host):
    """Keys of `mapping` naming `host`, an exact match before an alias (docker.io vs
    index.docker.io)."""
    return sorted((k for k in mapping if _same_registry(k, host)),
                  key=lambda k: _normalise_host(k) != _normalise_host(host))


def _helper_for(config, host):
    """The credential helper name for host: credHelpers[host], else credsStore."""
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        for key in _matching_keys(helpers, host):
            if isinstance(helpers[key], str) and helpers[key]:
                return helpers[key]
    store = config.get("credsStore")
    return store if isinstance(store, str) and store else None


def helper_credentials(name, server):
    """(user, secret) from `docker-credential-NAME get`, or None when it has none.

    The protocol (docker/docker-credential-helpers): the server (host[:port], or
    https://index.docker.io/v1/ for Docker Hub) on stdin, `{"ServerURL", "Username",
    "Secret"}` JSON on stdout; "credentials not found" and exit 1 when it has none.
    An identity token (Username "<token>") needs an OAuth2 exchange we do not do: it
    is logged and skipped.  Neither the secret nor the helper's stdout is ever put in
    a message.
    """
    program = "docker-credential-" + name
    if "/" in name or name.startswith("."):
        raise CredentialError("invalid credential helper name in the Docker config: %r"
                              % name)
    try:
        proc = subprocess.run([program, "get"], input=server.encode("utf-8"),
                              capture_output=True, timeout=HELPER_TIMEOUT)
    except FileNotFoundError:
        raise CredentialError("credential helper %s (named in the Docker config) is not "
                              "on PATH" % program) from None
    except subprocess.TimeoutExpired:
        raise CredentialError("credential helper %s did not answer for %s within %.0f s"
                              % (program, server, HELPER_TIMEOUT)) from None
    except OSError as exc:
        raise CredentialError("cannot run credential helper %s: %s"
                              % (program, exc.strerror or exc)) from None
    if proc.returncode:
        said = proc.stdout.decode("utf-8", "replace").strip()
        if "credentials not found" in said.lower():
            return None
        why = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CredentialError("credential helper %s failed for %s: %s"
                              % (program, server, why[-1] if why
                                 else "exit status %d" % proc.returncode))
    try:
        answer = parse_json(proc.stdout)
    except ValueError:
        answer = None
    username = answer.get("Username") if isinstance(answer, dict) else None
    secret = answer.get("Secret") if isinstance(answer, dict) else None
    if not isinstance(username, str) or not isinstance(secret, (str, type(None))):
        raise CredentialError("credential helper %s answered %s with no Username/Secret "
                              "JSON" % (program, server))
    if username == "<token>":
        LOG.warning("credential helper %s holds an identity token for %s; identity "
                    "tokens are not supported, trying without", program, server)
        return None
    return (username, secret or "") if username else None


def _auths_credentials(config, host):
    auths = config.get("auths")
    if not isinstance(auths, dict):
        return None
    for key in _matching_keys(auths, host):
        entry = auths[key]
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(entry["auth"], validate=False).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                LOG.warning("ignoring malformed auth entry for %s in the Docker config", key)
                continue
            user, colon, secret = decoded.partition(":")
            if user and colon:
                return user, secret
        if entry.get("username"):
            return entry["username"], entry.get("password") or ""
    return None
