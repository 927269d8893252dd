"""`occystrap proxy`: a filtering registry in front of a downstream registry (0.4.17 B.13).

Clients push to the embedded registry (occystrap/server).  When a manifest arrives,
the pushed image runs through the filters into `registry://DOWNSTREAM[/PREFIX]/<name>:<tag>`
while the client waits; the answer carries the digest of the bytes the client pushed
(clients check it), and in push-only mode later HEAD/GET of that manifest serve those
same bytes.

With --upstream (pull-through), GET /v2/<name>/manifests/<ref> serves the downstream's
copy when it has one (a cache hit); otherwise, under a per-image lock, the image is
fetched from the upstream, filtered, pushed downstream, and the downstream copy is
served.  Blobs the proxy does not hold are streamed from the downstream in chunks.

With --layer-cache, every image forwarded (pushed or pulled through) uses the layer
cache (cache.py): a layer an earlier run already filtered and stored downstream is not
rewritten or uploaded again.  With --layer-cache redis://, several proxies in front of
one downstream share those layers: one proxy's rewrite is another's hit.

Fixed from 0.4.17 (E.2 #4): serving pulled manifests and blobs crashed (a requests API
called on an httpx response), and a downstream path prefix was put in front of /v2/
instead of in front of the repository name.
"""
import logging
import signal
import sys
import threading
import time

from . import model
from .api import copy
from .cache import open_cache
from .compression import check_level
from .errors import InputError, OccystrapError, OutputError, URIParseError
from .filters import build_filter
from .model.platforms import parse_platforms
from .server import BlobStream, RegistryHTTPError, RegistryServer
from .transports.pushed import PushedImage
from .transports.registry.client import RegistryError
from .transports.registry.connect import connect
from .transports.registry.reference import parse_reference
from .transports.registry.sink import RegistrySink
from .transports.registry.source import RegistrySource, checked_manifest
from .uri import parse_uri

LOG = logging.getLogger(__name__)

DEFAULT_PORT = 5050
STOP_WAIT = 300.0               # how long a stop waits for images being processed
CHUNK = 1 << 20
ACCEPT_ALL = ", ".join([model.DOCKER_MANIFEST, model.OCI_MANIFEST, model.DOCKER_LIST,
                        model.OCI_INDEX])


def downstream_accept(accept):
    """The client's Accept without schema 1: asked for it, a registry converts (and signs)
    a schema 2 manifest, which gives a new digest every time and breaks pulls by digest.
    Everything the proxy stores downstream is schema 2 or OCI."""
    kept = [item.strip() for item in (accept or "").split(",")
            if item.strip() and "prettyjws" not in item
            and not item.strip().startswith("application/vnd.docker.distribution.manifest.v1")]
    return ", ".join(kept) if any(t in accept for t in (model.DOCKER_MANIFEST,
                                                       model.OCI_MANIFEST)) else ACCEPT_ALL


def parse_listen(text):
    """(host, port) from `HOST[:PORT]` or `[V6]:PORT`; the port defaults to 5050."""
    text = (text or "").strip()
    host, port = text, None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise URIParseError("invalid listen address: %s" % text)
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise URIParseError("invalid listen address: %s" % text)
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if port is not None:
        if not port.isdigit() or int(port) > 65535:
            raise OccystrapError("invalid port: %s" % port)
        port = int(port)
    return host or "127.0.0.1", DEFAULT_PORT if port is None else port


def split_downstream(text):
    """(host, prefix) from `HOST[/PREFIX]` (a scheme is tolerated and dropped)."""
    text = (text or "").strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.strip("/")
    host, _, prefix = text.partition("/")
    if not host:
        raise URIParseError("invalid downstream: %r (expected HOST[:PORT][/PREFIX])" % text)
    parse_reference("%s/%s" % (host, (prefix + "/" if prefix else "") + "probe"))
    return host, prefix


def split_upstream(text):
    """(scheme, host, username, password) from `[SCHEME://][USER:PASS@]HOST`: split at
    the last '@', then at the first ':' (0.4.17 A.2).  The scheme is "http", "https" or
    None when absent; 0.4.17 dropped it, so `https://` could not undo --insecure."""
    text = (text or "").strip()
    scheme = None
    if "://" in text:
        scheme, text = text.split("://", 1)
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise URIParseError("invalid upstream scheme: %r (expected http or https)"
                                % scheme)
    username = password = None
    if "@" in text:
        userinfo, _, text = text.rpartition("@")
        username, colon, secret = userinfo.partition(":")
        password = secret if colon else None
    text = text.strip("/")
    if not text or "/" in text:
        raise URIParseError("invalid upstream: %r (expected [USER:PASS@]HOST[:PORT])" % text)
    parse_reference("%s/probe" % text)
    return scheme, text, username or None, password


def _upstream_plain_http(scheme, upstream_flag, global_insecure):
    """Plain HTTP for the upstream?  An `http://` or `https://` prefix decides; else
    --upstream-insecure; else the global --insecure (0.4.17 applied it to both sides)."""
    if scheme == "https" and upstream_flag:
        raise URIParseError("--upstream-insecure contradicts the https:// upstream")
    if scheme is not None:
        return scheme == "http"
    return bool(upstream_flag or global_insecure)


class Proxy:
    def __init__(self, downstream, filter_specs=(), options=None, *, listen="127.0.0.1:5050",
                 concurrency=4, upstream=None, upstream_username=None,
                 upstream_password=None, upstream_insecure=False, upstream_ca_file=None,
                 stop_wait=STOP_WAIT):
        self.options = dict(options or {})
        self.filter_specs = list(filter_specs)
        for spec in self.filter_specs:          # a bad -f fails now, not on the first push
            build_filter(spec)
        check_level(self.options.get("compression") or "gzip",     # and so does a bad level
                    self.options.get("compression_level"))
        self.host, self.port = parse_listen(listen)
        self.downstream, self.prefix = split_downstream(downstream)
        self.upstream = None
        self.upstream_options = None
        if upstream:
            scheme, self.upstream, user, password = split_upstream(upstream)
            # The upstream has its own TLS settings: the global ones are the downstream's
            # (and the upstream's only when nothing upstream-specific is given).
            # Credentials too: the global ones (and --src-*) are not the upstream's.
            self.upstream_options = dict(
                self.options, username=upstream_username or user,
                password=upstream_password or password, src_username=None,
                src_password=None,
                insecure=_upstream_plain_http(scheme, upstream_insecure,
                                              self.options.get("insecure")),
                ca_file=upstream_ca_file or self.options.get("ca_file"),
                # pull-through serves what the upstream has: an index whole, unless
                # --platform picks
                platform=self.options.get("platform") or "all")
        self.stop_wait = stop_wait
        self._semaphore = threading.BoundedSemaphore(max(1, int(concurrency)))
        self._state = threading.Condition()
        self._inflight = 0
        self._stopping = False
        self._image_locks = {}
        self.pushed = self.push_failed = 0
        self.hits = self.misses = 0
        self._client = None
        self.server = None
        self.layer_cache = None

    # -- names -----------------------------------------------------------------------------
    def downstream_repository(self, name):
        return "%s/%s" % (self.prefix, name) if self.prefix else name

    def _downstream_uri(self, name, reference):
        return parse_uri("registry://%s/%s:%s" % (self.downstream,
                                                  self.downstream_repository(name), reference))

    # -- life cycle ------------------------------------------------------------------------
    def start(self):
        _, self._client = connect(self._downstream_uri("probe", "latest"), self.options, "dest")
        self.layer_cache = open_cache(self.options.get("layer_cache"))    # before any push
        pull = self.upstream is not None
        self.server = RegistryServer(
            self.options.get("temp_dir"), self.host, self.port, timeout=300.0,
            on_manifest=self._on_manifest,
            manifest_lookup=self._manifest_lookup if pull else None,
            blob_fetch=self._blob_fetch if pull else None, accept_indexes=True)
        try:
            self.server.start()
        except BaseException as exc:
            self._client.close()
            if self.layer_cache is not None:
                self.layer_cache.close()
            if isinstance(exc, OSError):
                raise OccystrapError("cannot listen on %s:%d: %s"
                                     % (self.host, self.port, exc.strerror or exc)) from None
            raise
        return self

    def stop(self):
        """Stop accepting, wait (bounded) for images in flight, drop the blobs."""
        with self._state:
            self._stopping = True
        self.server.stop_accepting()
        deadline = time.monotonic() + self.stop_wait
        with self._state:
            while self._inflight and time.monotonic() < deadline:
                LOG.info("Waiting for %d image(s) in progress", self._inflight)
                self._state.wait(min(5.0, max(0.0, deadline - time.monotonic())))
            if self._inflight:
                LOG.warning("Stopping with %d image(s) still in progress", self._inflight)
        self.server.close(timeout=5.0)
        self._client.close()
        if self.layer_cache is not None:
            self.layer_cache.close()
        LOG.info("Proxy stopped. Pushed %d images (%d failed). Pulled %d images "
                 "(%d cache hits, %d misses).", self.pushed, self.push_failed,
                 self.hits + self.misses, self.hits, self.misses)

    def run(self):
        """Serve until SIGINT or SIGTERM."""
        stop = []

        def on_signal(signum, frame):
            stop.append(signum)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT,
                                                                   signal.SIGTERM)}
        try:
            self.start()
            try:
                LOG.info("Listening on %s, forwarding to %s%s", self.server.url,
                         self.downstream, " (prefix %s)" % self.prefix if self.prefix else "")
                if self.upstream:
                    LOG.info("Pull-through from %s://%s", "http" if
                             self.upstream_options["insecure"] else "https", self.upstream)
                    LOG.info("Ready for pushes and pulls.")
                else:
                    LOG.info("Ready to receive pushes. Press Ctrl+C to stop.")
                while not stop:
                    time.sleep(0.2)
                LOG.info("Received %s, stopping", signal.Signals(stop[0]).name)
            finally:
                self.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _begin(self):
        with self._state:
            if self._stopping:
                raise RegistryHTTPError(503, "UNAVAILABLE", "the proxy is shutting down")
            self._inflight += 1

    def _end(self):
        with self._state:
            self._inflight -= 1
            self._state.notify_all()

    # -- processing ------------------------------------------------------------------------
    def _copy(self, source, name, reference):
        filters = [build_filter(spec) for spec in self.filter_specs]
        sink = RegistrySink(self._downstream_uri(name, reference), self.options)
        verify = self.options.get("verify", True) or self.options.get("verify_full", False)
        report = copy(source, sink, filters, parallel=self.options.get("parallel", 4),
                      verify=verify, verify_full=self.options.get("verify_full", False),
                      out=sys.stdout, layer_cache=self.layer_cache)
        if report.verify_errors:
            raise OutputError("verification of the downstream copy failed: %s"
                              % "; ".join(report.verify_errors))
        return report

    def _on_manifest(self, name, reference, body, media_type):
        if ":" in reference:
            # the children of an index come by digest before it: hold them until the
            # index names them (a filtered image gets another digest, so nothing pushed
            # by digest alone is forwarded)
            LOG.debug("Holding %s@%s for the index that names it", name, reference)
            return
        where = "%s:%s" % (name, reference)
        self._begin()
        try:
            with self._semaphore:
                started = time.monotonic()
                LOG.info("Processing pushed image %s", where)
                try:
                    source = PushedImage(self.server, name, body, media_type, reference,
                                         parse_platforms(self.options.get("platform")
                                                         or "all"))
                    report = self._copy(source, name, reference)
                except Exception as exc:
                    with self._state:
                        self.push_failed += 1
                    LOG.error("Push of %s failed: %s", where, exc)
                    if isinstance(exc, OccystrapError):
                        raise RegistryHTTPError(500, "UNKNOWN", "processing %s failed: %s"
                                                % (where, exc)) from None
                    raise
                with self._state:
                    self.pushed += 1
                LOG.info("Pushed %s to %s/%s:%s (%d layers, %.1fs)", where, self.downstream,
                         self.downstream_repository(name), reference, report.layers,
                         time.monotonic() - started)
        finally:
            self._end()

    # -- pull-through ----------------------------------------------------------------------
    def _downstream_manifest(self, name, reference, accept):
        repository = self.downstream_repository(name)
        try:
            response = self._client.request(
                "GET", "/v2/%s/manifests/%s" % (repository, reference),
                scope="repository:%s:pull" % repository,
                headers={"Accept": downstream_accept(accept)})
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise RegistryHTTPError(502, "UNKNOWN", "downstream: %s" % exc) from None
        try:
            raw = checked_manifest(response, reference, "%s/%s%s%s" % (
                self.downstream, repository, "@" if ":" in reference else ":", reference))
        except InputError as exc:
            raise RegistryHTTPError(502, "UNKNOWN", "downstream: %s" % exc) from None
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        return raw, media_type or model.DOCKER_MANIFEST

    def _image_lock(self, name, reference):
        with self._state:
            return self._image_locks.setdefault((name, reference), threading.Lock())

    def _manifest_lookup(self, name, reference, accept, method):
        # One pull is counted per request by tag (GET, or HEAD as dockerd resolves a tag
        # before it GETs the digest); the requests by digest that follow are not.
        by_tag = ":" not in reference
        found = self._downstream_manifest(name, reference, accept)
        if found is not None:
            if by_tag:
                with self._state:
                    self.hits += 1
            return found
        if not by_tag:
            # A filtered image has another digest: nothing upstream can be served
            # under this one (unless it was pushed here, which the caller checks next).
            return None
        with self._image_lock(name, reference):
            found = self._downstream_manifest(name, reference, accept)
            if found is not None:
                with self._state:
                    self.hits += 1
                return found
            self._begin()
            try:
                with self._semaphore:
                    self._pull(name, reference)
                with self._state:
                    self.misses += 1
            finally:
                self._end()
            found = self._downstream_manifest(name, reference, accept)
            if found is None:
                raise RegistryHTTPError(502, "UNKNOWN", "the downstream does not serve "
                                        "%s:%s after it was pushed" % (name, reference))
            return found

    def _pull(self, name, reference):
        where = "%s/%s:%s" % (self.upstream, name, reference)
        started = time.monotonic()
        LOG.info("Cache miss: fetching %s", where)
        try:
            uri = parse_uri("registry://%s/%s:%s" % (self.upstream, name, reference))
            with RegistrySource(uri, self.upstream_options) as source:
                report = self._copy(source, name, reference)
        except InputError as exc:
            LOG.error("Pull of %s failed: %s", where, exc)
            if str(exc).startswith("Image not found"):
                raise RegistryHTTPError(404, "MANIFEST_UNKNOWN", "manifest unknown upstream",
                                        detail={"name": name, "reference": reference})
            raise RegistryHTTPError(502, "UNKNOWN", "pull-through of %s failed: %s"
                                    % (where, exc)) from None
        except OccystrapError as exc:
            LOG.error("Pull of %s failed: %s", where, exc)
            raise RegistryHTTPError(502, "UNKNOWN", "pull-through of %s failed: %s"
                                    % (where, exc)) from None
        LOG.info("Pulled %s into %s/%s (%d layers, %.1fs)", where, self.downstream,
                 self.downstream_repository(name), report.layers, time.monotonic() - started)

    def _blob_fetch(self, name, digest, method):
        """Stream a blob from the downstream (urllib3, in chunks: 0.4.17 crashed here)."""
        repository = self.downstream_repository(name)
        try:
            response = self._client.request(
                "GET" if method == "GET" else "HEAD",
                "/v2/%s/blobs/%s" % (repository, digest),
                scope="repository:%s:pull" % repository, stream=True)
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise RegistryHTTPError(502, "UNKNOWN", "downstream: %s" % exc) from None
        length = response.headers.get("Content-Length")
        size = int(length) if length and length.isdigit() else None

        done = [method != "GET"]

        def chunks():
            while True:
                piece = response.read(CHUNK)
                if not piece:
                    done[0] = True
                    return
                yield piece

        def close():
            if not done[0]:
                response.close()            # never pool a connection with unread data
            response.release_conn()

        return BlobStream(size=size, chunks=chunks() if method == "GET" else (),
                          media_type=response.headers.get("Content-Type")
                          or "application/octet-stream", close=close)
