"""HTTP over a unix socket with urllib3: how occystrap talks to the Docker Engine API.

The daemon is the one the docker CLI would use (daemon_address): an explicit
`?socket=`, else $DOCKER_HOST (`unix://PATH`, or `tcp://HOST:PORT` as plain HTTP),
else /var/run/docker.sock.

Why not requests-unixsocket or the docker SDK (0.4.17 used the former): urllib3 is
already the registry client's only HTTP dependency, and a unix socket needs nothing
but a connection class whose connect() opens AF_UNIX instead of TCP.  The host name
in requests is irrelevant (the daemon ignores it); "localhost" is sent.

Every failure becomes one line: the caller chooses InputError (docker:// source) or
OutputError (docker:// sink), and a missing or refused socket says which socket.
"""
import os
import socket
import urllib.parse

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import NewConnectionError

from .errors import InputError, OptionError
from .jsonparse import parse_json
from .model import DOCKER_SOCKET

DEFAULT_SOCKET = DOCKER_SOCKET
MAX_API_VERSION = "1.41"        # what dockerd 20.10 and podman 4.x both speak


def daemon_address(explicit=None):
    """The Engine API to talk to, as a unix socket path or `tcp://HOST:PORT`.

    `explicit` (a `?socket=` or `--socket` value) wins over $DOCKER_HOST, which wins
    over /var/run/docker.sock, as for the docker CLI.  Both may be a path, `unix://PATH`
    or `tcp://HOST:PORT`.  Anything else (ssh://, npipe://, a TLS daemon with
    DOCKER_TLS_VERIFY) is refused: quietly using the default socket instead would talk
    to another daemon than the user meant.
    """
    where, value = "socket", explicit
    if not value:
        where, value = "DOCKER_HOST", os.environ.get("DOCKER_HOST")
    if not value:
        return DEFAULT_SOCKET
    if value.startswith("unix://"):
        value = value[len("unix://"):]
    elif value.startswith("tcp://"):
        hostport = urllib.parse.urlsplit(value)
        try:
            port = hostport.port
        except ValueError:
            port = None
        if not hostport.hostname or not port or hostport.path.strip("/"):
            raise OptionError("%s=%s: expected tcp://HOST:PORT" % (where, value))
        if os.environ.get("DOCKER_TLS_VERIFY"):
            raise OptionError("%s=%s: TLS to the Docker daemon (DOCKER_TLS_VERIFY) is not "
                              "supported; use its unix socket" % (where, value))
        return "tcp://%s:%d" % (hostport.hostname, port)
    elif "://" in value:
        raise OptionError("%s=%s: only unix:// and tcp:// Docker daemons are supported"
                          % (where, value))
    if not value:
        raise OptionError("%s: empty unix socket path" % where)
    return value


class UnixHTTPConnection(HTTPConnection):
    """An urllib3 connection whose transport is a unix socket at socket_path."""

    def __init__(self, *args, socket_path=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if isinstance(self.timeout, (int, float)):     # else urllib3's "default"
                sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise NewConnectionError(self, "%s" % (exc.strerror or exc)) from exc
        self.sock = sock
        self._has_connected_to_proxy = False


class UnixHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = UnixHTTPConnection

    def __init__(self, socket_path, maxsize=4, timeout=None):
        # 1 MiB send blocks: image loads stream whole tarballs as the request body
        super().__init__("localhost", maxsize=maxsize, block=False, retries=False,
                         timeout=timeout, socket_path=socket_path, blocksize=1 << 20)


def _version_tuple(text):
    try:
        return tuple(int(part) for part in str(text).split("."))
    except ValueError:
        return ()


def _reason(exc):
    """The innermost readable cause of a urllib3/socket failure."""
    while isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, NewConnectionError):
        return str(exc).split(": ", 1)[-1]
    if isinstance(exc, urllib3.exceptions.ProtocolError) and len(exc.args) > 1:
        exc = exc.args[1]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or exc.__class__.__name__


class UnixHTTPClient:
    """A small client for one Docker-API socket.

    request() prefixes the negotiated API version (`/v1.41`, or the daemon's own when
    older) and raises `error` (InputError by default) with a one-line message for a
    connection failure or a status outside `ok`.
    """

    def __init__(self, socket_path=DEFAULT_SOCKET, error=InputError, timeout=60.0):
        self.socket_path = socket_path      # or tcp://HOST:PORT (daemon_address)
        self.error = error
        pool_timeout = urllib3.Timeout(connect=10.0, read=timeout)
        if socket_path.startswith("tcp://"):
            hostport = urllib.parse.urlsplit(socket_path)
            self._pool = HTTPConnectionPool(hostport.hostname, hostport.port, maxsize=4,
                                            block=False, retries=False,
                                            timeout=pool_timeout, blocksize=1 << 20)
        else:
            self._pool = UnixHTTPConnectionPool(socket_path, timeout=pool_timeout)
        self._prefix = None

    # -- plumbing --------------------------------------------------------------------
    def _urlopen(self, method, path, body=None, headers=None, stream=False, timeout=None):
        if timeout is False:                    # saves and loads: as long as they take
            timeout = urllib3.Timeout(connect=10.0, read=None)
        elif timeout is None:
            timeout = self._pool.timeout
        try:
            return self._pool.urlopen(method, path, body=body, headers=headers,
                                      preload_content=not stream, retries=False,
                                      redirect=False, chunked=False, timeout=timeout)
        except NewConnectionError as exc:
            raise self.error("cannot connect to the Docker daemon at %s: %s"
                             % (self.socket_path, _reason(exc))) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self.error("Docker daemon at %s: %s %s failed: %s"
                             % (self.socket_path, method, path.split("?")[0],
                                _reason(exc))) from None

    def api_prefix(self):
        """`/vX.Y`: 1.41, or the daemon's ApiVersion when that is lower (GET /version)."""
        if self._prefix is None:
            response = self._urlopen("GET", "/version")
            version = MAX_API_VERSION
            if response.status == 200:
                try:
                    reported = parse_json(response.data).get("ApiVersion")
                except (ValueError, AttributeError):
                    reported = None
                if reported and () < _version_tuple(reported) < _version_tuple(version):
                    version = reported
            self._prefix = "/v" + version
        return self._prefix

    # -- the API ---------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, stream=False, ok=(200,),
                query=None, timeout=None):
        """Send METHOD /vX.Y{path}; return the urllib3 response.

        With stream=True the body is not read: the caller must read it and call
        release_conn() (or close()).  Otherwise response.data holds the body and the
        connection is back in the pool.  timeout=False means no read timeout (long
        saves and loads).
        """
        url = self.api_prefix() + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        response = self._urlopen(method, url, body=body, headers=headers, stream=stream,
                                 timeout=timeout)
        if response.status not in ok:
            message = error_message(response)
            raise self.error("Docker daemon: %s %s: %s" % (method, path.split("?")[0], message))
        return response

    def close(self):
        self._pool.close()


def error_message(response):
    """The daemon's `{"message": ...}` of an error response (the body is consumed)."""
    try:
        data = response.data
    finally:
        response.release_conn()
    try:
        message = parse_json(data).get("message")
    except (ValueError, AttributeError):
        message = None
    if not message:
        message = data.decode("utf-8", "replace").strip() or "HTTP %d" % response.status
    return "%s (HTTP %d)" % (one_line(message), response.status)


def one_line(message):
    """A daemon message on one line (podman's load errors list every format it tried,
    one per line: keep the docker-archive one, the format we send)."""
    marker = "\n * docker-archive: "
    if marker in message:
        message = message.split(marker, 1)[1].split("\n * ", 1)[0]
    return " ".join(str(message).split())
