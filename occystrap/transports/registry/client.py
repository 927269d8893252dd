"""An HTTP client for the OCI distribution API: pooling, auth, retries, rate limiting.

What 0.4.17 got wrong (spec B.8, E.1, E.2 #5) and this fixes:

- one client per worker thread and no shared pool: here one thread-safe urllib3
  PoolManager serves every thread (`pool_size` connections per host, blocking when
  all are busy);
- Bearer only, strict challenge regex, a case-sensitive header lookup on pull, the
  scope not URL-encoded, only the `token` field read: here any challenge order, Basic
  (htpasswd registries), `token` or `access_token`, `expires_in` honoured, scopes
  encoded and repeatable (distribution spec, "Token Authentication Specification");
- no retries on push and a `--rate-limit` that did nothing: here every request may
  retry (5xx, 429 with Retry-After, connection errors) when its body can be replayed,
  and a shared limiter really spaces requests out.  A streamed blob upload cannot be
  replayed; the sink resumes it from the registry's upload status instead (sink.py).

Credentials and tokens never appear in messages or logs, and the Authorization header
is only sent to the registry itself, never to a host a blob request is sent on to
(urllib3 also strips it on cross-host redirects).
"""
import base64
import email.utils
import functools
import logging
import os
import re
import ssl
import threading
import time
import urllib.parse

import urllib3

from ...errors import OccystrapError, OptionError
from ...jsonparse import parse_json
from ...model import RATE_LIMIT_RANGE
from .auth import parse_challenges

LOG = logging.getLogger(__name__)

MAX_RETRY_AFTER = 60.0          # never sleep longer than this on a server's say-so
MAX_BACKOFF = 30.0
TOKEN_MARGIN = 10.0             # refresh a token this long before it expires
DEFAULT_TOKEN_LIFETIME = 60     # token spec: "When omitted, this defaults to 60 seconds"
ERROR_BODY_LIMIT = 64 << 10


def _version():
    from ... import __version__
    return __version__


def transient_status(status):
    """A status worth retrying: 429 and 5xx except 501 (not implemented stays so)."""
    return status == 429 or (status >= 500 and status != 501)


class RegistryError(OccystrapError):
    """A registry request failed; `.status` is the HTTP status (None: no response),
    `.code` the registry's error code (e.g. MANIFEST_UNKNOWN) when it sent one,
    `.retry_after` the seconds its Retry-After asked for (None: not sent)."""

    def __init__(self, message, status=None, code=None, retry_after=None, transient=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self._transient = transient

    @property
    def transient(self):
        """Whether trying again may help: a 429 or 5xx answer, or a lost connection
        (not a TLS or URL problem)."""
        if self._transient is not None:
            return self._transient
        return self.status is not None and transient_status(self.status)


class Stats:
    """Thread-safe counters for the run summary: requests sent (each attempt, token
    requests included), retries made, and 429 answers received."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0

    def add(self, name, count=1):
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def as_dict(self):
        with self._lock:
            return {"requests": self.requests, "retries": self.retries,
                    "rate_limited": self.rate_limited}


class RateLimiter:
    """At most `rate` requests per second across all threads.

    A token bucket holding one token (no bursts): each caller reserves the next free
    slot under the lock and sleeps until it outside the lock, so N requests take at
    least (N-1)/rate seconds however many threads send them.
    """

    def __init__(self, rate):
        low, high = RATE_LIMIT_RANGE
        if not low <= rate <= high:         # false for nan too
            raise OptionError("rate limit must be from %s to %s requests per second, not %r"
                              % (low, high, rate))
        self.interval = 1.0 / rate
        self._lock = threading.Lock()
        self._next = 0.0

    def wait(self):
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def retry_after_seconds(value, now=None):
    """Seconds to wait for a Retry-After value (delta-seconds or HTTP-date), capped at
    MAX_RETRY_AFTER; None when absent or unparseable (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return min(max(when.timestamp() - now, 0.0), MAX_RETRY_AFTER)


def _reason(exc):
    """A short, credential-free description of a urllib3 transport error."""
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3.exceptions.SSLError):
        text = str(exc.args[0] if exc.args else exc)
        found = re.search(r"certificate verify failed:?\s*([^()]*)", text)
        if found or "CERTIFICATE_VERIFY_FAILED" in text:
            why = found.group(1).strip() if found else ""
            return ("TLS certificate verification failed%s; pass the CA with "
                    "?ca_file=PEM or SSL_CERT_FILE, or use --insecure for plain HTTP"
                    % (" (%s)" % why if why else ""))
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
            return ("TLS error: the registry answered in plain HTTP; use --insecure "
                    "(or ?insecure=true) for a registry without TLS")
        return "TLS error: %s" % text
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        cause = exc.__cause__ or exc.__context__
        return "connection failed: %s" % (cause or str(exc).split(": ", 1)[-1])
    if isinstance(exc, urllib3.exceptions.ProtocolError) and len(exc.args) > 1:
        return "connection broken: %s" % (exc.args[1],)
    if isinstance(exc, (urllib3.exceptions.ConnectTimeoutError,
                        urllib3.exceptions.ReadTimeoutError)):
        return "timed out"
    return str(exc) or exc.__class__.__name__


def _retryable_error(exc):
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # A certificate problem or a bad URL will not fix itself.
    return not isinstance(exc, (urllib3.exceptions.SSLError,
                                urllib3.exceptions.LocationValueError,
                                urllib3.exceptions.ProxySchemeUnknown))


def _replayable(body):
    """Whether a request body can be sent twice (a file or a generator cannot)."""
    return body is None or isinstance(body, (bytes, bytearray, memoryview))


def _origin(url):
    parsed = urllib3.util.parse_url(url)
    scheme = (parsed.scheme or "http").lower()
    return scheme, (parsed.host or "").lower(), parsed.port or (443 if scheme == "https" else 80)


def _display(url):
    """The path without the query: upload Locations carry opaque state there."""
    parts = urllib.parse.urlsplit(url)
    return parts.path or "/"


def _scope_hint(response, scope):
    """" (the token does not grant SCOPE)" when the registry said insufficient_scope."""
    for value in response.headers.getlist("WWW-Authenticate"):
        for _, params in parse_challenges(value):
            if params.get("error") == "insufficient_scope":
                return " (the token does not grant %s)" % (scope or params.get("scope"))
    return ""


def _discard(response):
    """Return a response's connection to the pool, whatever was read of it."""
    try:
        response.drain_conn()
    except (urllib3.exceptions.HTTPError, OSError):
        pass
    response.release_conn()


def _body(response, stream):
    """The (start of the) body of an error response, for its message."""
    try:
        return (response.read(ERROR_BODY_LIMIT) if stream else response.data) or b""
    except (urllib3.exceptions.HTTPError, OSError):
        return b""


def _describe_error(status, reason, body):
    """(code, "CODE: message") from a distribution error body (spec "Error Codes":
    {"errors": [{"code", "message", "detail"}]}), else the reason phrase."""
    try:
        errors = parse_json(body).get("errors") or []
        first = errors[0]
        code = str(first.get("code") or "")
        message = str(first.get("message") or "")
        if code or message:
            return code or None, ": ".join(filter(None, (code, message)))
    except (ValueError, AttributeError, IndexError, KeyError, TypeError):   # any shape
        pass
    text = body[:200].decode("utf-8", "replace").strip() if body else ""
    if text and "\n" not in text and not text.startswith("<"):
        return None, "%s: %s" % (reason or "error", text) if reason else text
    return None, reason or ""


@functools.lru_cache(maxsize=8)
def _trusting(ca_file):
    """One SSLContext per trust source for the whole process: loading a store costs
    ~40 ms of CPU, and a sync or a worker makes a client per host for every image
    (contexts are safe to share between threads and connections)."""
    if ca_file and os.path.isdir(ca_file):
        return ssl.create_default_context(capath=ca_file)
    return ssl.create_default_context(cafile=ca_file)


class ClientPool:
    """One RegistryClient per registry host and credentials, for many copies at once
    (sync): one connection pool per host, its tokens reused, and one --rate-limit for
    every request of the run.  Clients it made ignore close(); close() here ends them.
    limiter replaces the in-process RateLimiter (a worker's, shared in Redis)."""

    def __init__(self, rate_limit=None, limiter=None):
        self._lock = threading.Lock()
        self._clients = {}
        self.limiter = limiter or (RateLimiter(float(rate_limit)) if rate_limit else None)

    def get(self, key, make):
        """The client for key, made by make(limiter) the first time."""
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = make(self.limiter)
                client.shared = True
            return client

    def close(self):
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.shared = False
            client.close()


class RegistryClient:
    """Talks to one registry.  Thread-safe: share one instance between workers."""

    def __init__(self, host, *, insecure=False, ca_file=None, username=None,
                 password=None, retries=3, rate_limit=None, timeout=60.0, pool_size=8,
                 user_agent=None, backoff=1.0, limiter=None):
        if "://" in host:                       # tolerate a scheme in the host
            scheme, host = host.split("://", 1)
            insecure = scheme.lower() == "http"
        self.host = host.rstrip("/")
        self.insecure = bool(insecure)
        self.base_url = "%s://%s" % ("http" if self.insecure else "https", self.host)
        self.username = username
        self.password = password
        self.retries = max(0, int(retries or 0))
        self.backoff = backoff
        self.user_agent = user_agent or "occystrap/%s" % _version()
        self.stats = Stats()
        self._limiter = limiter or (RateLimiter(float(rate_limit)) if rate_limit else None)
        self.shared = False         # owned by a ClientPool, which closes it
        self._origin = _origin(self.base_url)
        self._lock = threading.Lock()           # guards the auth state below
        self._token_lock = threading.Lock()     # one token fetch at a time
        self._tokens = {}                       # scope key -> (token, expires at)
        self._bearer = None                     # params of the registry's Bearer challenge
        self._basic = False                     # the registry asked for Basic
        self._pool = urllib3.PoolManager(
            num_pools=16, maxsize=pool_size, block=True,
            ssl_context=None if self._plain(ca_file) else self._ssl_context(ca_file),
            timeout=urllib3.Timeout(connect=min(timeout, 30.0), read=timeout))

    def _plain(self, ca_file):
        """Plain HTTP with no CA named: loading the trust store (~50 ms per client) is
        left to urllib3, for the rare https URL (a token realm) it may still meet."""
        return self.insecure and not (ca_file or os.environ.get("SSL_CERT_FILE"))

    def _ssl_context(self, ca_file):
        """Trust `ca_file` (a PEM file or a directory of them), else $SSL_CERT_FILE,
        else the system store.  Only the first that is set is trusted, as with curl
        --cacert: a private registry's CA should not widen what else is trusted."""
        ca_file = ca_file or os.environ.get("SSL_CERT_FILE") or None
        try:
            return _trusting(ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError("registry %s: cannot load CA certificates from %s: %s"
                                % (self.host, ca_file, exc)) from None

    def close(self):
        if not self.shared:
            self._pool.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- URLs --------------------------------------------------------------------------
    def url(self, url_or_path):
        if url_or_path.startswith(("http://", "https://")):
            return url_or_path
        return self.base_url + ("" if url_or_path.startswith("/") else "/") + url_or_path

    def _same_origin(self, url):
        return _origin(url) == self._origin

    # -- the request ---------------------------------------------------------------------
    def request(self, method, url_or_path, *, headers=None, body=None, scope=None,
                stream=False, ok=(200,), retry=True):
        """Send one API request, authenticating and retrying as needed.

        Returns the urllib3 response when its status is in `ok`; with stream=True
        the body is not read (read it in chunks, then call release_conn()).
        :raises RegistryError: any other status, failed authentication, or a
            connection error that retries did not cure.
        """
        method = method.upper()
        url = self.url(url_or_path)
        own = self._same_origin(url)
        where = "%s %s" % (method, _display(url) if own else url.split("?", 1)[0])
        reauthenticated = False
        while True:
            sent = self._authorization(scope, where) if own else None
            merged = {"User-Agent": self.user_agent}
            merged.update(headers or {})
            if sent:
                merged["Authorization"] = sent
            response = self._exchange(method, url, merged, body, stream, retry, where)
            if response.status == 401 and 401 not in ok and own and not reauthenticated:
                challenges = response.headers.getlist("WWW-Authenticate")
                _discard(response)
                self._on_challenge(challenges, scope, sent, where)
                reauthenticated = True
                if not _replayable(body):
                    # A token that expired mid-upload: the stream is spent, so the
                    # caller sends it again (the registry sink resumes the upload),
                    # at once: the new token is here.
                    raise RegistryError("registry %s: %s: 401 (credentials renewed; the "
                                        "streamed body must be sent again)"
                                        % (self.host, where), status=401, transient=True,
                                        retry_after=0.0)
                continue
            break
        if response.status in ok:
            return response
        raw = _body(response, stream)
        _discard(response)
        code, detail = _describe_error(response.status, response.reason, raw)
        if response.status in (401, 403) and own and (sent or reauthenticated):
            raise RegistryError("registry %s: %s: %d authentication failed %s%s%s"
                                % (self.host, where, response.status, self._who(),
                                   ": " + detail if detail else "",
                                   _scope_hint(response, scope)),
                                status=response.status, code=code)
        raise RegistryError("registry %s: %s: %d %s" % (self.host, where, response.status,
                                                        detail),
                            status=response.status, code=code,
                            retry_after=retry_after_seconds(response.headers.get("Retry-After")))

    def _who(self):
        return "as %s" % self.username if self.username else "anonymously (no credentials)"

    def _exchange(self, method, url, headers, body, stream, retry, where):
        """Send, retrying transient failures; returns the final response, whatever its
        status.  A body that is not bytes (a file, a generator) cannot be replayed, so
        such a request is tried once."""
        attempts = self.retries if retry and _replayable(body) else 0
        follow = method in ("GET", "HEAD")
        attempt = 0
        while True:
            if self._limiter is not None:
                self._limiter.wait()
            self.stats.add("requests")
            try:
                response = self._pool.urlopen(
                    method, url, body=body, headers=headers, preload_content=not stream,
                    redirect=follow, assert_same_host=False,
                    retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0,
                                          redirect=10 if follow else 0,
                                          raise_on_redirect=False, raise_on_status=False))
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt < attempts and _retryable_error(exc):
                    self.pause(where, _reason(exc), attempt)
                    attempt += 1
                    continue
                raise RegistryError("registry %s: %s: %s" % (self.host, where, _reason(exc)),
                                    transient=_retryable_error(exc))
            status = response.status
            LOG.debug("%s -> %d", where, status)
            if status == 429:
                self.stats.add("rate_limited")
            if transient_status(status) and attempt < attempts:
                delay = retry_after_seconds(response.headers.get("Retry-After"))
                _discard(response)
                self.pause(where, status, attempt, delay)
                attempt += 1
                continue
            return response

    def pause(self, where, why, attempt, retry_after=None):
        """Wait before retry number attempt + 1 of a failed request: the server's
        Retry-After when it sent one, else exponential backoff."""
        delay = self._backoff(attempt) if retry_after is None else retry_after
        LOG.debug("%s: %s; retry %d in %.1f s", where, why, attempt + 1, delay)
        self.stats.add("retries")
        time.sleep(delay)

    def _backoff(self, attempt):
        return min(self.backoff * (2 ** min(attempt, 16)), MAX_BACKOFF)

    # -- authentication -------------------------------------------------------------------
    def _basic_header(self):
        raw = ("%s:%s" % (self.username, self.password or "")).encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _authorization(self, scope, where):
        """The Authorization header for a request in `scope`, if one is known.

        Once the registry has sent a Bearer challenge, a token for a new scope is
        fetched before the request, which saves a 401 round trip per scope.
        """
        key = scope or ""
        with self._lock:
            if self._basic:
                return self._basic_header() if self.username else None
            bearer = self._bearer
            cached = self._tokens.get(key)
        if cached and cached[1] > time.monotonic():
            return "Bearer " + cached[0]
        if bearer is None:
            return None
        return "Bearer " + self._token(bearer, scope, stale=None, where=where)

    def _on_challenge(self, values, scope, sent, where):
        challenges = [c for value in values for c in parse_challenges(value)]
        schemes = {name: params for name, params in reversed(challenges)}
        if "bearer" in schemes and schemes["bearer"].get("realm"):
            with self._lock:
                self._bearer = schemes["bearer"]
            stale = sent[len("Bearer "):] if sent and sent.startswith("Bearer ") else None
            # The registry's own scope if the caller gave none (e.g. GET /v2/).
            self._token(schemes["bearer"], scope or schemes["bearer"].get("scope"),
                        stale=stale, where=where, key=scope or "")
        elif "basic" in schemes:
            if not self.username:
                raise RegistryError("registry %s: %s: 401 authentication required: the "
                                    "registry wants a username and password (--username/"
                                    "--password, user:pass@ in the URI, or docker login)"
                                    % (self.host, where), status=401)
            if sent and sent.startswith("Basic "):
                raise RegistryError("registry %s: %s: 401 authentication failed %s"
                                    % (self.host, where, self._who()), status=401)
            with self._lock:
                self._basic = True
        else:
            raise RegistryError("registry %s: %s: 401 unauthorized, and no usable "
                                "WWW-Authenticate challenge (got %s)"
                                % (self.host, where, ", ".join(sorted(schemes)) or "none"),
                                status=401)

    def _token(self, challenge, scope, stale, where, key=None):
        """A Bearer token for `scope` from the challenge's realm, cached per scope.

        Token spec: GET realm?service=S&scope=A&scope=B (scopes space-separated in
        `scope` become repeated parameters), HTTP Basic when we have credentials; the
        answer holds `token` (or the OAuth name `access_token`) and `expires_in`.
        """
        key = (scope or "") if key is None else key
        with self._token_lock:
            with self._lock:
                cached = self._tokens.get(key)
            # Another thread may have refreshed it while we waited for the lock.
            if cached and cached[0] != stale and cached[1] > time.monotonic():
                return cached[0]
            token, lifetime = self._fetch_token(challenge, scope, where)
            expires = time.monotonic() + max(lifetime - min(TOKEN_MARGIN, lifetime / 10), 0)
            with self._lock:
                self._tokens[key] = (token, expires)
            return token

    def _fetch_token(self, challenge, scope, where):
        realm = challenge["realm"]
        params = []
        if challenge.get("service"):
            params.append(("service", challenge["service"]))
        for item in (scope or "").split():
            params.append(("scope", item))
        url = realm
        if params:
            url += ("&" if urllib.parse.urlsplit(realm).query else "?") \
                + urllib.parse.urlencode(params)
        headers = {"User-Agent": self.user_agent}
        if self.username:
            headers["Authorization"] = self._basic_header()
        what = "token request for %s" % where
        response = self._exchange("GET", url, headers, None, False, True, what)
        try:
            if response.status in (401, 403):
                raise RegistryError("registry %s: %s: %d authentication failed %s (the token "
                                    "server %s refused the credentials)"
                                    % (self.host, where, response.status, self._who(),
                                       urllib.parse.urlsplit(realm).netloc),
                                    status=response.status)
            if response.status != 200:
                code, detail = _describe_error(response.status, response.reason,
                                               response.data)
                raise RegistryError("registry %s: %s: token server answered %d %s"
                                    % (self.host, where, response.status, detail),
                                    status=response.status, code=code)
            try:
                answer = parse_json(response.data)
                token = answer.get("token") or answer.get("access_token")
                lifetime = float(answer.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
            except (ValueError, AttributeError, TypeError):
                token = None
            if not token or not isinstance(token, str):
                raise RegistryError("registry %s: %s: the token server's answer holds no "
                                    "token" % (self.host, where), status=response.status)
            return token, lifetime
        finally:
            _discard(response)
