"""Fixtures that start real peers (dockerd, podman, docker-registry, redis-server,
skopeo).

Each daemon starts once per session in its own temp dir and stops at the end.
A test skips only when the peer's binary is missing; a peer that is installed
but fails to start is an error, not a skip.
"""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import peers  # noqa: E402  (tests/peers.py)
import tokenserver  # noqa: E402  (tests/tokenserver.py)


def _need(binary):
    if shutil.which(binary) is None:
        pytest.skip('%s is not installed (apt-get install it; see .ci/run)' % binary)


@pytest.fixture(scope='session')
def dockerd():
    """A real dockerd: .docker(*args), .load(tar), .inspect_image(ref), .socket."""
    _need('dockerd')
    _need('docker')
    daemon = peers.Dockerd().start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope='session')
def podman():
    """podman system service: .docker(*args), .podman(*args), .load, .socket."""
    _need('podman')
    _need('docker')
    daemon = peers.Podman().start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope='session')
def registry():
    """docker-registry over plain HTTP; .url is '127.0.0.1:PORT'."""
    _need('docker-registry')
    daemon = peers.Registry().start()
    yield daemon
    daemon.stop()


REGISTRY_USERS = {'testuser': 'testpass'}


@pytest.fixture(scope='session')
def registry_tls():
    """docker-registry over HTTPS with a self-signed cert; .ca_file trusts it."""
    _need('docker-registry')
    _need('openssl')
    daemon = peers.Registry(tls=True).start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope='session')
def registry_basic():
    """docker-registry with htpasswd (Basic) auth; .htpasswd is {user: password}."""
    _need('docker-registry')
    _need('htpasswd')
    daemon = peers.Registry(htpasswd=REGISTRY_USERS).start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope='session')
def token_server():
    """The tests' own token issuer (tests/tokenserver.py); users REGISTRY_USERS,
    anonymous pull allowed (set .anonymous_pull per test and restore it)."""
    _need('openssl')
    server = tokenserver.TokenServer(users=REGISTRY_USERS).start()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def registry_token(token_server):
    """docker-registry with Bearer token auth; .token is the TokenServer."""
    _need('docker-registry')
    daemon = peers.Registry(token=token_server).start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope='session')
def redis_server():
    """redis-server on a free loopback port, persistence off; .url, .cli(*args)."""
    _need('redis-server')
    daemon = peers.RedisServer().start()
    yield daemon
    daemon.stop()


@pytest.fixture
def redis_url(redis_server):
    """The session's redis-server, emptied for this test."""
    redis_server.flush()
    return redis_server.url


class _Skopeo:
    """skopeo(*args) runs skopeo; skopeo.inspect(ref, raw=, config=, tls_verify=)."""

    __call__ = staticmethod(peers.skopeo)
    inspect = staticmethod(peers.skopeo_inspect)


@pytest.fixture
def skopeo():
    """skopeo helpers (see _Skopeo), once skopeo is known to be installed."""
    _need('skopeo')
    return _Skopeo()
