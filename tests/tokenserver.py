"""A small token issuer for docker-registry's `auth: token:` mode (Distribution 2.8).

Distribution verifies Bearer tokens but ships no issuer, and Debian packages none, so
the tests run this one.  It implements
the GET flow of the distribution token spec:

    GET /token?service=SERVICE&scope=repository:NAME:pull,push[&scope=...]
    Authorization: Basic ...        (optional: anonymous requests are allowed)
    -> 200 {"token": JWT, "access_token": JWT, "expires_in": N, "issued_at": ...}
    -> 401 on bad credentials

The JWT is what 2.8 insists on: RS256 with the signing certificate in the `x5c`
header, `iss`/`aud` equal to the registry's issuer/service, and `aud` a string (2.8
rejects a list).  Signing uses the `openssl` binary, so no `cryptography` package is
needed.  Policy: known users get every action they ask for; anonymous callers get
`pull` when `anonymous_pull` is set and never `push`.  Every request is recorded in
`.log` (who, the scopes asked for and granted) for tests to assert on.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_cert(directory, common_name, san=None, prefix=""):
    """A self-signed RSA key and certificate via `openssl req -x509`; (key, cert)."""
    key = os.path.join(directory, prefix + "key.pem")
    cert = os.path.join(directory, prefix + "cert.pem")
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
           "-keyout", key, "-out", cert, "-subj", "/CN=" + common_name]
    if san:
        cmd += ["-addext", "subjectAltName=" + san]
    subprocess.run(cmd, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return key, cert


def parse_scope(scope):
    """`repository:foo/bar:pull,push` -> ("repository", "foo/bar", ["pull", "push"]).

    The type is before the first ':' and the actions after the last, so a name with
    a ':' (a registry host with a port) stays whole.
    """
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return kind, name, [a for a in actions.split(",") if a]


class TokenServer:
    """Start with .start() (or as a context manager); .realm is the token URL."""

    def __init__(self, users=None, service="test-registry", issuer="test-issuer",
                 anonymous_pull=True, expires_in=300):
        self.users = dict(users or {})
        self.service = service
        self.issuer = issuer
        self.anonymous_pull = anonymous_pull
        self.expires_in = expires_in
        self.log = []
        self._log_lock = threading.Lock()
        self.dir = None
        self.key_path = self.cert_path = None
        self._cert_der_b64 = None
        self._server = self._thread = None
        self.port = None

    @property
    def realm(self):
        return "http://127.0.0.1:%d/token" % self.port

    # -- lifecycle -------------------------------------------------------------------
    def start(self):
        self.dir = tempfile.mkdtemp(prefix="oc-token-", dir="/tmp")
        self.key_path, self.cert_path = make_cert(self.dir, "token", prefix="token-")
        der = subprocess.run(["openssl", "x509", "-in", self.cert_path, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self._cert_der_b64 = base64.b64encode(der).decode("ascii")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server._handle(self)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="tokenserver", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- tokens ----------------------------------------------------------------------
    def sign(self, claims):
        """A compact RS256 JWS over `claims`, signed by `openssl dgst -sha256 -sign`."""
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._cert_der_b64]}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode())
                         + "." + b64url(json.dumps(claims, separators=(",", ":")).encode()))
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key_path],
                                   input=signing_input.encode("ascii"), check=True,
                                   capture_output=True).stdout
        return signing_input + "." + b64url(signature)

    def grant(self, user, kind, name, actions):
        """The actions of one requested scope this caller gets."""
        if kind != "repository":
            return []
        if user is not None:
            return list(actions)
        return [a for a in actions if a == "pull" and self.anonymous_pull]

    def _authenticate(self, header):
        """(ok, user): ok is False for wrong credentials, user None for anonymous."""
        if not header:
            return True, None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            user, _, password = base64.b64decode(value.strip()).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False, None
        if user not in self.users or self.users[user] != password:
            return False, user
        return True, user

    def _handle(self, request):
        url = urllib.parse.urlsplit(request.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        entry = {"path": url.path, "raw_query": url.query,
                 "service": (query.get("service") or [None])[0],
                 "scopes": query.get("scope", []), "user": None, "granted": [],
                 "status": None}
        ok, user = self._authenticate(request.headers.get("Authorization"))
        entry["user"] = user
        if url.path != "/token":
            self._reply(request, entry, 404, {"errors": [{"code": "NOT_FOUND"}]})
            return
        if not ok:
            self._reply(request, entry, 401, {"errors": [{"code": "UNAUTHORIZED",
                                                          "message": "bad credentials"}]},
                        {"WWW-Authenticate": 'Basic realm="token"'})
            return
        access = []
        for scope in entry["scopes"]:
            kind, name, actions = parse_scope(scope)
            granted = self.grant(user, kind, name, actions)
            access.append({"type": kind, "name": name, "actions": granted})
        entry["granted"] = access
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": entry["service"] or "",
                  "exp": now + self.expires_in, "nbf": now - 5, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        token = self.sign(claims)
        self._reply(request, entry, 200, {
            "token": token, "access_token": token, "expires_in": self.expires_in,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})

    def _reply(self, request, entry, status, payload, headers=None):
        entry["status"] = status
        with self._log_lock:
            self.log.append(entry)
        body = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)

    def entries(self):
        """A snapshot of the request log."""
        with self._log_lock:
            return list(self.log)
