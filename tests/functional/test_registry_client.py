"""RegistryClient against real docker-registry peers (HTTP, TLS, htpasswd, token auth)
and against a tiny scripted HTTP server for retries, redirects and rate limiting.

Regression tests for 0.4.17's B.8 / E bugs: Bearer-only auth with a strict regex and
a case-sensitive header lookup on pull, no Basic auth, unencoded scopes, `token` only,
no retries on push, and a `--rate-limit` that did nothing.
"""
import base64
import hashlib
import json
import socket
import struct
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from occystrap.transports.registry.client import RegistryClient, RegistryError

from .conftest import REGISTRY_USERS, peers

USER, PASSWORD = next(iter(REGISTRY_USERS.items()))
FAST = {"backoff": 0.01}            # keep exponential backoff short in tests


def _repo(prefix):
    return "%s/%s" % (prefix, uuid.uuid4().hex[:10])


def _push_blob(client, repo, data, scope=None):
    """Monolithic-by-PUT upload (2.8 ignores ?digest= on the POST), then HEAD it."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    scope = scope or "repository:%s:pull,push" % repo
    started = client.request("POST", "/v2/%s/blobs/uploads/" % repo, scope=scope, ok=(202,))
    location = started.headers["Location"]
    separator = "&" if "?" in location else "?"
    done = client.request("PUT", location + separator + "digest=" + digest, scope=scope,
                          body=data, headers={"Content-Type": "application/octet-stream"},
                          ok=(201,))
    assert done.headers["Docker-Content-Digest"] == digest
    head = client.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest), scope=scope)
    assert int(head.headers["Content-Length"]) == len(data)
    return digest


# -- plain HTTP ---------------------------------------------------------------------------

def test_anonymous_ping_plain_http(registry):
    with RegistryClient(registry.url, insecure=True) as client:
        assert client.base_url == "http://" + registry.url
        response = client.request("GET", "/v2/")
        assert response.status == 200
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        assert client.stats.as_dict() == {"requests": 1, "retries": 0, "rate_limited": 0}


def test_error_message_from_registry_json(registry):
    with RegistryClient(registry.url, insecure=True) as client:
        with pytest.raises(RegistryError) as info:
            client.request("GET", "/v2/x/manifests/1")
        assert str(info.value) == ("registry %s: GET /v2/x/manifests/1: 404 "
                                   "MANIFEST_UNKNOWN: manifest unknown" % registry.url)
        assert (info.value.status, info.value.code) == (404, "MANIFEST_UNKNOWN")
        # 404 is not transient: no retries
        assert client.stats.retries == 0


def test_blob_roundtrip_and_streaming(registry):
    repo = _repo("plain")
    data = b"occystrap " * 5000
    with RegistryClient(registry.url, insecure=True) as client:
        digest = _push_blob(client, repo, data)
        response = client.request("GET", "/v2/%s/blobs/%s" % (repo, digest), stream=True)
        try:
            got = b"".join(iter(lambda: response.read(4096), b""))
        finally:
            response.release_conn()
        assert got == data
        ranged = client.request("GET", "/v2/%s/blobs/%s" % (repo, digest),
                                headers={"Range": "bytes=10-19"}, ok=(200, 206))
        assert ranged.status == 206 and ranged.data == data[10:20]


def test_connection_refused_is_a_registry_error():
    port = peers.free_port()
    with RegistryClient("127.0.0.1:%d" % port, insecure=True, retries=2, **FAST) as client:
        with pytest.raises(RegistryError) as info:
            client.request("GET", "/v2/")
        assert "connection failed" in str(info.value)
        assert info.value.status is None
        assert client.stats.retries == 2 and client.stats.requests == 3


# -- TLS ----------------------------------------------------------------------------------

def test_tls_with_ca_file(registry_tls, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with RegistryClient(registry_tls.url, ca_file=registry_tls.ca_file) as client:
        assert client.base_url == "https://" + registry_tls.url
        assert client.request("GET", "/v2/").status == 200
        _push_blob(client, _repo("tls"), b"over tls")


def test_tls_with_ssl_cert_file(registry_tls, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", registry_tls.ca_file)
    with RegistryClient(registry_tls.url) as client:
        assert client.request("GET", "/v2/").status == 200


def test_tls_untrusted_certificate(registry_tls, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with RegistryClient(registry_tls.url, **FAST) as client:
        with pytest.raises(RegistryError) as info:
            client.request("GET", "/v2/")
        assert "certificate verification failed" in str(info.value)
        assert client.stats.retries == 0            # a bad certificate is not transient


def test_tls_missing_ca_file(registry_tls, tmp_path):
    with pytest.raises(RegistryError) as info:
        RegistryClient(registry_tls.url, ca_file=str(tmp_path / "nope.pem"))
    assert "cannot load CA certificates" in str(info.value)


# -- htpasswd (Basic) ---------------------------------------------------------------------

def test_basic_auth_good_credentials(registry_basic):
    with RegistryClient(registry_basic.url, insecure=True, username=USER,
                        password=PASSWORD) as client:
        assert client.request("GET", "/v2/").status == 200
        assert client.stats.requests == 2           # the 401 challenge, then with Basic
        assert client.request("GET", "/v2/").status == 200
        assert client.stats.requests == 3           # Basic is now sent up front
        _push_blob(client, _repo("basic"), b"basic auth blob")


def test_basic_auth_bad_credentials(registry_basic):
    with RegistryClient(registry_basic.url, insecure=True, username=USER,
                        password="wrong-secret") as client:
        with pytest.raises(RegistryError) as info:
            client.request("GET", "/v2/")
    message = str(info.value)
    assert info.value.status == 401
    assert "authentication failed as %s" % USER in message
    assert "wrong-secret" not in message


def test_basic_auth_without_credentials(registry_basic):
    with RegistryClient(registry_basic.url, insecure=True) as client:
        with pytest.raises(RegistryError) as info:
            client.request("GET", "/v2/")
    assert info.value.status == 401
    assert "authentication required" in str(info.value)
    assert "--username" in str(info.value)


# -- token auth (Bearer) ------------------------------------------------------------------

def _token_requests(server, since):
    return server.entries()[since:]


def test_token_auth_push_and_pull(registry_token, token_server):
    repo = _repo("tok")
    before = len(token_server.entries())
    with RegistryClient(registry_token.url, insecure=True, username=USER,
                        password=PASSWORD) as client:
        digest = _push_blob(client, repo, b"token auth blob")
        asked = _token_requests(token_server, before)
        # One token for the push scope, reused by POST, PUT and HEAD.
        assert [e["scopes"] for e in asked] == [["repository:%s:pull,push" % repo]]
        assert asked[0]["user"] == USER and asked[0]["service"] == "test-registry"
        assert asked[0]["granted"] == [{"type": "repository", "name": repo,
                                        "actions": ["pull", "push"]}]
        # Pull in its own scope: one more token, and then none.
        pull = "repository:%s:pull" % repo
        for _ in range(3):
            got = client.request("GET", "/v2/%s/blobs/%s" % (repo, digest), scope=pull)
            assert got.data == b"token auth blob"
        assert len(_token_requests(token_server, before)) == 2
        # The Authorization header never leaks into messages.
        with pytest.raises(RegistryError) as info:
            client.request("GET", "/v2/%s/manifests/nope" % repo, scope=pull)
        assert info.value.status == 404 and "Bearer" not in str(info.value)


def test_token_scope_is_url_encoded(registry_token, token_server):
    source, target = _repo("src"), _repo("dst")
    with RegistryClient(registry_token.url, insecure=True, username=USER,
                        password=PASSWORD) as client:
        digest = _push_blob(client, source, b"mount me")
        before = len(token_server.entries())
        # A cross-repository mount needs two scopes: both are sent, as repeated params.
        scope = "repository:%s:pull,push repository:%s:pull" % (target, source)
        mounted = client.request(
            "POST", "/v2/%s/blobs/uploads/?mount=%s&from=%s" % (target, digest, source),
            scope=scope, ok=(201, 202))
        assert mounted.status == 201
        entry = _token_requests(token_server, before)[0]
        assert entry["scopes"] == scope.split()
        encoded = "scope=repository%%3A%s%%3Apull%%2Cpush" % target.replace("/", "%2F")
        assert encoded in entry["raw_query"]
        assert "service=test-registry" in entry["raw_query"]


def test_token_auth_bad_credentials(registry_token):
    with RegistryClient(registry_token.url, insecure=True, username=USER,
                        password="not-it") as client:
        with pytest.raises(RegistryError) as info:
            client.request("GET", "/v2/x/manifests/1", scope="repository:x:pull")
    assert info.value.status == 401
    assert "authentication failed as %s" % USER in str(info.value)
    assert "not-it" not in str(info.value)


def test_token_anonymous_pull_allowed_push_refused(registry_token, token_server):
    repo = _repo("anon")
    with RegistryClient(registry_token.url, insecure=True, username=USER,
                        password=PASSWORD) as owner:
        digest = _push_blob(owner, repo, b"public blob")
    before = len(token_server.entries())
    with RegistryClient(registry_token.url, insecure=True) as client:
        got = client.request("GET", "/v2/%s/blobs/%s" % (repo, digest),
                             scope="repository:%s:pull" % repo)
        assert got.data == b"public blob"
        assert _token_requests(token_server, before)[0]["user"] is None
        with pytest.raises(RegistryError) as info:
            client.request("POST", "/v2/%s/blobs/uploads/" % repo,
                           scope="repository:%s:pull,push" % repo, ok=(202,))
    message = str(info.value)
    assert info.value.status == 401
    assert "authentication failed anonymously" in message
    assert "does not grant repository:%s:pull,push" % repo in message
    granted = _token_requests(token_server, before)[-1]["granted"]
    assert granted == [{"type": "repository", "name": repo, "actions": ["pull"]}]


def test_token_anonymous_pull_refused(registry_token, token_server):
    token_server.anonymous_pull = False
    try:
        with RegistryClient(registry_token.url, insecure=True) as client:
            with pytest.raises(RegistryError) as info:
                client.request("GET", "/v2/x/manifests/1", scope="repository:x:pull")
    finally:
        token_server.anonymous_pull = True
    assert info.value.status == 401
    assert "authentication failed anonymously" in str(info.value)


def test_token_expiry_is_honoured(registry_token, token_server):
    token_server.expires_in = 1
    try:
        with RegistryClient(registry_token.url, insecure=True, username=USER,
                            password=PASSWORD) as client:
            before = len(token_server.entries())
            client.request("GET", "/v2/")
            client.request("GET", "/v2/")
            assert len(_token_requests(token_server, before)) == 1
            time.sleep(1.0)
            client.request("GET", "/v2/")
            assert len(_token_requests(token_server, before)) == 2
    finally:
        token_server.expires_in = 300


def test_token_shared_between_threads(registry_token, token_server):
    repo = _repo("threads")
    with RegistryClient(registry_token.url, insecure=True, username=USER,
                        password=PASSWORD, pool_size=4) as client:
        digest = _push_blob(client, repo, b"x" * 1000)
        before = len(token_server.entries())
        errors = []

        def pull():
            try:
                for _ in range(5):
                    client.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest),
                                   scope="repository:%s:pull" % repo)
            except Exception as exc:        # reported below
                errors.append(exc)

        threads = [threading.Thread(target=pull) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(_token_requests(token_server, before)) == 1


# -- a scripted server for retries, redirects and rate limiting ---------------------------

class Scripted:
    """HTTP/1.0 server answering from a per-path script; records what it received.

    An action is a status int, ("status", headers dict, body bytes), "reset" (close
    the connection with a TCP RST before answering) or ("sleep", seconds).  When a
    path's script runs out, it answers 200 "ok".
    """

    def __init__(self):
        self.scripts = {}
        self.seen = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                owner._handle(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def script(self, path, *actions):
        with self.lock:
            self.scripts[path] = list(actions)

    def _handle(self, request):
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        path = request.path.split("?", 1)[0]
        with self.lock:
            self.seen.append({"method": request.command, "path": request.path,
                              "host": request.headers.get("Host"), "body": body,
                              "headers": dict(request.headers)})
            script = self.scripts.get(path)
            action = script.pop(0) if script else 200
        if action == "reset":
            request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
            request.connection.close()
            return
        if isinstance(action, tuple) and action[0] == "sleep":
            time.sleep(action[1])
            action = 200
        status, headers, payload = (action, {}, b"ok") if isinstance(action, int) else action
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def scripted():
    server = Scripted()
    yield server
    server.close()


def test_retry_on_503_then_ok(scripted):
    scripted.script("/v2/", 503, 502)
    with RegistryClient(scripted.host, insecure=True, **FAST) as client:
        assert client.request("GET", "/v2/").data == b"ok"
        assert client.stats.as_dict() == {"requests": 3, "retries": 2, "rate_limited": 0}


def test_retry_after_on_429(scripted):
    scripted.script("/v2/", (429, {"Retry-After": "1"}, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}'))
    with RegistryClient(scripted.host, insecure=True, **FAST) as client:
        began = time.monotonic()
        assert client.request("GET", "/v2/").status == 200
        assert time.monotonic() - began >= 0.95
        assert client.stats.as_dict() == {"requests": 2, "retries": 1, "rate_limited": 1}


def test_retry_on_connection_reset(scripted):
    scripted.script("/v2/x/blobs/uploads/", "reset")
    with RegistryClient(scripted.host, insecure=True, **FAST) as client:
        response = client.request("POST", "/v2/x/blobs/uploads/", body=b"payload")
        assert response.status == 200
        assert client.stats.retries == 1
    # The bytes body was sent again in full.
    assert [s["body"] for s in scripted.seen] == [b"payload", b"payload"]


def test_retry_on_read_timeout(scripted):
    scripted.script("/v2/", ("sleep", 1.0))
    with RegistryClient(scripted.host, insecure=True, timeout=0.3, **FAST) as client:
        assert client.request("GET", "/v2/").status == 200
        assert client.stats.retries == 1


def test_retries_exhausted(scripted):
    scripted.script("/v2/", *([(503, {}, b'{"errors":[{"code":"UNAVAILABLE",'
                                          b'"message":"try later"}]}')] * 5))
    with RegistryClient(scripted.host, insecure=True, retries=2, **FAST) as client:
        with pytest.raises(RegistryError) as info:
            client.request("GET", "/v2/")
        assert str(info.value) == ("registry %s: GET /v2/: 503 UNAVAILABLE: try later"
                                   % scripted.host)
        assert client.stats.as_dict() == {"requests": 3, "retries": 2, "rate_limited": 0}


def test_no_retry_when_disabled_or_body_not_replayable(scripted):
    scripted.script("/a", 503)
    scripted.script("/b", 503)
    with RegistryClient(scripted.host, insecure=True, **FAST) as client:
        with pytest.raises(RegistryError) as info:
            client.request("PUT", "/a", body=b"x", retry=False)
        assert info.value.status == 503
        with pytest.raises(RegistryError):
            client.request("PUT", "/b", body=iter([b"chunk"]),
                           headers={"Content-Length": "5"})
        assert client.stats.retries == 0


def test_redirect_to_another_host_drops_authorization(scripted):
    other = "http://localhost:%d/storage/blob" % scripted.port
    basic = "Basic " + base64.b64encode(b"u:p").decode()
    scripted.script("/v2/r/blobs/sha256:x",
                    (401, {"WWW-Authenticate": 'Basic realm="r"'}, b""),
                    (307, {"Location": other}, b""))
    scripted.script("/storage/blob", (200, {}, b"blob bytes"))
    with RegistryClient(scripted.host, insecure=True, username="u", password="p") as client:
        response = client.request("GET", "/v2/r/blobs/sha256:x", stream=True)
        try:
            assert response.read() == b"blob bytes"
        finally:
            response.release_conn()
        # An absolute URL on another host gets no credentials either.
        assert client.request("GET", other).status == 200
        assert client.request("GET", "http://%s/v2/own" % scripted.host).status == 200
    auth = [(s["path"], s["headers"].get("Authorization")) for s in scripted.seen]
    assert auth == [("/v2/r/blobs/sha256:x", None), ("/v2/r/blobs/sha256:x", basic),
                    ("/storage/blob", None), ("/storage/blob", None), ("/v2/own", basic)]


def test_bearer_challenge_with_odd_parameter_order(scripted):
    realm = "http://127.0.0.1:%d/auth/token" % scripted.port
    challenge = ('Bearer scope="repository:a/b:pull" , service="svc",realm="%s"' % realm)
    scripted.script("/v2/a/b/manifests/1", (401, {"WWW-Authenticate": challenge}, b""))
    scripted.script("/auth/token", (200, {}, json.dumps({"access_token": "T0k"}).encode()))
    with RegistryClient(scripted.host, insecure=True) as client:
        assert client.request("GET", "/v2/a/b/manifests/1",
                              scope="repository:a/b:pull").status == 200
    token_request = scripted.seen[1]
    assert token_request["path"] == ("/auth/token?service=svc&scope=repository%3Aa%2Fb%3Apull")
    assert "Authorization" not in token_request["headers"]
    assert scripted.seen[2]["headers"]["Authorization"] == "Bearer T0k"


def test_rate_limit_spaces_requests(scripted):
    with RegistryClient(scripted.host, insecure=True, rate_limit=20) as client:
        began = time.monotonic()
        for _ in range(5):
            client.request("GET", "/v2/")
        assert time.monotonic() - began >= 4 / 20


def test_rate_limit_is_shared_between_threads(scripted):
    with RegistryClient(scripted.host, insecure=True, rate_limit=20) as client:
        began = time.monotonic()
        threads = [threading.Thread(target=lambda: [client.request("GET", "/v2/")
                                                    for _ in range(3)]) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert client.stats.requests == 9
        assert time.monotonic() - began >= 8 / 20
