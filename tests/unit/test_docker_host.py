"""Which Docker daemon docker:// and dockerpush:// talk to (unixhttp.daemon_address)."""
import pytest

from occystrap.errors import OptionError
from occystrap.unixhttp import daemon_address


@pytest.mark.parametrize("explicit, docker_host, expected", [
    (None, None, "/var/run/docker.sock"),
    (None, "unix:///run/user/1/docker.sock", "/run/user/1/docker.sock"),
    (None, "tcp://127.0.0.1:2375", "tcp://127.0.0.1:2375"),
    (None, "tcp://localhost:2375/", "tcp://localhost:2375"),
    ("/tmp/mine.sock", "unix:///run/other.sock", "/tmp/mine.sock"),
    ("unix:///tmp/mine.sock", "tcp://127.0.0.1:2375", "/tmp/mine.sock"),
    ("", "unix:///run/other.sock", "/run/other.sock"),
])
def test_daemon_address(monkeypatch, explicit, docker_host, expected):
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    if docker_host is None:
        monkeypatch.delenv("DOCKER_HOST", raising=False)
    else:
        monkeypatch.setenv("DOCKER_HOST", docker_host)
    assert daemon_address(explicit) == expected


@pytest.mark.parametrize("docker_host, tls, message", [
    ("ssh://me@host", "", "only unix:// and tcp://"),
    ("npipe:////./pipe/docker_engine", "", "only unix:// and tcp://"),
    ("tcp://127.0.0.1", "", "expected tcp://HOST:PORT"),
    ("tcp://127.0.0.1:2376", "1", "DOCKER_TLS_VERIFY"),
    ("unix://", "", "empty unix socket path"),
])
def test_unsupported_docker_host_is_refused(monkeypatch, docker_host, tls, message):
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    monkeypatch.setenv("DOCKER_TLS_VERIFY", tls)
    with pytest.raises(OptionError, match=message):
        daemon_address()
