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

from ...jsonparse import parse_json
from .reference import DOCKER_HUB_HOSTS

LOG = logging.getLogger(__name__)

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
    can differ), then --username/--password (click has already folded in
    OCCYSTRAP_USERNAME/PASSWORD), then the `auths` entry of the Docker client config
    for the host.  A source counts only when it names a user; a URI user without a
    password takes the explicit password (`registry://me@host/x` + $OCCYSTRAP_PASSWORD).
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
    """(user, password) from a Docker client config's `auths`, or None.

    Entries hold either `auth` (base64 of "user:password", what `docker login`
    writes) or separate `username`/`password`.  Credential helpers (credsStore,
    credHelpers) and identity tokens are not consulted.  An unreadable or malformed
    file is logged and ignored: it must not break anonymous access.
    """
    config = docker_config
    if config is None or isinstance(config, (str, os.PathLike)):
        path = config or default_docker_config_path()
        try:
            with open(path, "rb") as f:
                config = parse_json(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            LOG.warning("ignoring Docker config %s: %s", path, exc)
            return None
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        return None
    # An exact key match beats an alias (docker.io vs index.docker.io).
    keys = sorted((k for k in auths if _same_registry(k, host)),
                  key=lambda k: _normalise_host(k) != _normalise_host(host))
    for key in keys:
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
