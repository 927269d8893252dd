"""Turn one `sync:` entry into the jobs (one image each) it stands for.

Sources that name one image give one job; sources that name many list them:
- `registry://HOST/REPO`: every tag (tags/list) the entry takes;
  `registry://HOST/PREFIX/*`: every repository below PREFIX in `/v2/_catalog`, then
  every tag of each (`registry://HOST/*`: the whole catalog);
- `ocidir://PATH`: every `org.opencontainers.image.ref.name` of index.json;
- `dir://PATH`: every image:tag its catalog.json lists (a `?unique_names=true` tree),
  each read back as `dir://PATH?image=NAME&tag=TAG`;
- `quay://ORG[/GLOB[:TAG]]`: as 0.4.17 (B.2), quay's REST API v1 lists ORG's
  repositories (`public=true`, `next_page`), GLOB (fnmatch, default `*`) picks them
  and TAG, or (unlike 0.4.17, whose default was `latest`) every active tag the entry
  takes, is copied from `registry://quay.io/ORG/REPO:TAG`.  `?token=` (else
  --password) is sent as Bearer; `?since=YYYY-MM-DD` drops repositories whose
  last_modified and tags whose start_ts are older than that UTC midnight.  New:
  `?api=URL` (default https://quay.io) and `?registry=HOST[:PORT]` (default quay.io)
  say where the API and the images are, for mirrors and tests.
A tag named in the source is copied whatever the entry's tags/semver rules say.

Destinations: `registry://DHOST/DREPO` receives each tag under its own name
(multi-repository sources: `DREPO/<path below the prefix or ORG>`); a tag there is
only allowed when the source is one image.  `ocidir://PATH` receives each image as
ref name TAG, or `<repository path with '/' as '_'>_TAG` for multi-repository sources.
`dir://PATH?unique_names=true` takes every job as is (the sink names each image).
Other destinations hold one image, so only a one-image source may go there.
"""
import dataclasses
import datetime
import fnmatch
import os
import urllib.parse

from ..errors import OccystrapError
from ..jsonparse import parse_json
from ..transports.ocidir.layout import INDEX_FILE, layout_index, ref_name, split_path
from ..transports.registry.client import RegistryClient, RegistryError
from ..transports.registry.connect import connect
from ..transports.registry.listing import list_repositories, list_tags
from ..transports.registry.reference import TAG_RE, parse_reference
from ..uri import parse_uri, without_password
from .model import Job

PAGE = 1000                     # n= of _catalog and tags/list requests (tests shrink it)
QUAY_PAGE = 100                 # limit= of quay's tag listing (its maximum)
QUAY_API = "https://quay.io"
QUAY_REGISTRY = "quay.io"
MANY_TAGS = "a destination for many tags names a repository, not a tag"


class ResolveError(OccystrapError):
    """An entry's source could not be listed, or its destination cannot take it."""


@dataclasses.dataclass(frozen=True)
class _Found:
    """One image a source holds: its URI, its repository path below the listed prefix
    (None for single-repository sources) and its tag (None: only a digest)."""
    source: str
    repository: object
    tag: object


def resolve(entry, options):
    """The jobs of entry, in listing order (repositories, then tags, sorted).

    :raises ResolveError: (or another OccystrapError) naming the entry's source.
    """
    try:
        source = parse_uri(entry.source)
        destination = parse_uri(entry.destination)
        many, found = _list(entry, source, options)
        return [Job(item.source, _destination(destination, item, many), entry)
                for item in found]
    except OccystrapError as exc:
        raise ResolveError("entry %d (%s): %s" % (entry.number, _shown(entry.source), exc)) \
            from None


def _shown(text):
    """A source for messages: no query (it may hold a token), no password."""
    return without_password(text.split("?", 1)[0])


def _query(uri):
    """`?...` of the URI as typed, to carry its options into every job."""
    query = uri.original.partition("?")[2]
    return "?" + query if query else ""


def _list(entry, source, options):
    """(whether the source names many images, [_Found])."""
    if source.scheme == "registry":
        return _registry(entry, source, options)
    if source.scheme == "quay":
        return True, _quay(entry, source, options)
    if source.scheme == "ocidir":
        return _ocidir(entry, source)
    if source.scheme == "dir":
        return _directory(entry, source)
    return False, [_Found(entry.source, None, None)]


# -- registry:// -------------------------------------------------------------------------
def _has_tag(path):
    """Whether a registry path names a tag or digest (a ':' after the last '/')."""
    return "@" in path.split("/", 1)[-1] or ":" in path.rsplit("/", 1)[-1]


def _registry(entry, source, options):
    path = source.path
    query = _query(source)
    if path == "*" or path.endswith("/*"):
        host, _, prefix = path[:-1].rstrip("/").partition("/")
        probe = dataclasses.replace(source, path="%s/%s" % (host, prefix or "catalog"))
        ref, client = connect(probe, options, "src")
        try:
            below = prefix + "/" if prefix else ""
            names = sorted(name for name in list_repositories(client, PAGE)
                           if name.startswith(below))
            found = [_Found("registry://%s/%s:%s%s" % (ref.host, name, tag, query),
                            name[len(below):], tag)
                     for name in names for tag in _tags(entry, client, name)]
        finally:
            client.close()
        return True, found
    if _has_tag(path):
        ref = parse_reference(path)
        named = path.split("/", 1)[-1].split("@", 1)[0].rsplit("/", 1)[-1]
        return False, [_Found(entry.source, None,
                              None if ref.digest and ":" not in named else ref.tag)]
    ref, client = connect(source, options, "src")
    try:
        return True, [_Found("registry://%s/%s:%s%s" % (ref.host, ref.repository, tag, query),
                             None, tag) for tag in _tags(entry, client, ref.repository)]
    finally:
        client.close()


def _tags(entry, client, repository):
    try:
        tags = list_tags(client, repository, PAGE)
    except RegistryError as exc:
        if exc.status == 404:
            raise ResolveError("no repository %s at %s" % (repository, client.host)) from None
        raise
    return sorted(tag for tag in tags if entry.takes(tag))


# -- ocidir:// and dir:// ------------------------------------------------------------------
def _quoted(path):
    return urllib.parse.quote(path, safe="/")


def _ocidir(entry, source):
    path, tag = split_path(source.path)
    if tag is not None:
        return False, [_Found(entry.source, None, tag)]
    where = "ocidir://%s" % path
    try:
        with open(os.path.join(path, INDEX_FILE), "rb") as fileobj:
            document = layout_index(fileobj.read(), where)
    except OSError as exc:
        raise ResolveError("cannot read %s: %s" % (os.path.join(path, INDEX_FILE),
                                                   exc.strerror)) from None
    names = sorted({name for name in map(ref_name, document["manifests"]) if name})
    for name in names:
        if "/" in name or ":" in name:
            raise ResolveError("ref name %r cannot be named as ocidir://PATH:TAG" % name)
    return True, [_Found("ocidir://%s:%s%s" % (_quoted(path), name, _query(source)), None,
                         name) for name in names if entry.takes(name)]


def _directory(entry, source):
    path = source.path
    catalog_path = os.path.join(path, "catalog.json")
    if source.options.get("image") or source.options.get("tag") or \
            not os.path.exists(catalog_path):
        return False, [_Found(entry.source, None, source.raw.get("tag") or None)]
    try:
        with open(catalog_path, "rb") as fileobj:
            catalog = parse_json(fileobj.read())
    except OSError as exc:
        raise ResolveError("cannot read %s: %s" % (catalog_path, exc.strerror)) from None
    except ValueError as exc:
        raise ResolveError("%s is not valid JSON: %s" % (catalog_path, exc)) from None
    if not isinstance(catalog, dict) or not all(
            isinstance(tags, dict) and all(isinstance(t, str) for t in tags)
            for tags in catalog.values()):
        raise ResolveError("%s is not an object of {image: {tag: manifest}}" % catalog_path)
    several = len(catalog) > 1
    return True, [_Found("dir://%s?%s" % (_quoted(path), urllib.parse.urlencode(
                             {"image": image, "tag": tag})),
                         image if several else None, tag)
                  for image in sorted(catalog) for tag in sorted(catalog[image])
                  if entry.takes(tag)]


# -- quay:// -------------------------------------------------------------------------------
def _since(value):
    """Epoch seconds of UTC midnight of a YYYY-MM-DD, or None."""
    if value in (None, ""):
        return None
    try:
        day = datetime.datetime.strptime(str(value), "%Y-%m-%d")
    except ValueError:
        raise ResolveError("Invalid since date %r, expected YYYY-MM-DD format"
                           % str(value)) from None
    return day.replace(tzinfo=datetime.timezone.utc).timestamp()


def _quay(entry, source, options):
    raw = source.raw or {}
    unknown = sorted(set(raw) - {"token", "since", "api", "registry"})
    if unknown:
        raise ResolveError("unknown quay:// option %s (known: token, since, api, registry)"
                           % ", ".join(unknown))
    org, _, rest = source.path.partition("/")
    pattern, _, tag = (rest or "*").partition(":")
    if not org or "/" in pattern or (tag and not TAG_RE.match(tag)):
        raise ResolveError("expected quay://ORG[/GLOB[:TAG]]")
    since = _since(raw.get("since"))
    token = raw.get("token") or options.get("src_password") or options.get("password")
    registry = raw.get("registry") or QUAY_REGISTRY
    client = RegistryClient(raw.get("api") or QUAY_API, insecure=False,
                            ca_file=options.get("ca_file"), retries=options.get("retries", 3),
                            rate_limit=options.get("rate_limit"))
    api = _QuayAPI(client, token)
    try:
        names = [name for name, modified in api.repositories(org, since is not None)
                 if fnmatch.fnmatchcase(name, pattern)
                 and (since is None or modified is None or modified >= since)]
        found = []
        for name in sorted(names):
            for tag_name, started in api.tags(org, name, tag or None):
                if since is not None and started is not None and started < since:
                    continue
                if tag or entry.takes(tag_name):
                    found.append(_Found("registry://%s/%s/%s:%s" % (registry, org, name,
                                                                    tag_name), name,
                                        tag_name))
    finally:
        client.close()
    return found


class _QuayAPI:
    """quay's REST API v1: the two listings 0.4.17 used, shape-checked."""

    def __init__(self, client, token):
        self.client = client
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = "Bearer %s" % token

    def _get(self, path, params):
        url = "/api/v1/%s?%s" % (path, urllib.parse.urlencode(params))
        response = self.client.request("GET", url, headers=self.headers,
                                       ok=(200, 401, 403, 404))
        if response.status in (401, 403):
            raise ResolveError("Authentication failed for quay API %s (HTTP %d): check the "
                               "token" % (self.client.host, response.status))
        if response.status == 404:
            return None
        try:
            document = parse_json(response.data)
        except ValueError as exc:
            raise ResolveError("quay API %s: not JSON: %s" % (path, exc)) from None
        if not isinstance(document, dict):
            raise ResolveError("quay API %s: not a JSON object" % path)
        return document

    def repositories(self, org, last_modified):
        """[(name, last_modified epoch or None)] of org, following next_page."""
        params = {"namespace": org, "public": "true"}
        if last_modified:
            params["last_modified"] = "true"
        found = []
        while True:
            page = self._get("repository", params)
            if page is None:
                raise ResolveError("quay has no namespace %s" % org)
            listed = page.get("repositories")
            if not isinstance(listed, list) or not all(
                    isinstance(r, dict) and isinstance(r.get("name"), str) for r in listed):
                raise ResolveError("quay API repository: not a list of repositories")
            for item in listed:
                modified = item.get("last_modified")
                found.append((item["name"], modified if isinstance(modified, (int, float))
                              and not isinstance(modified, bool) else None))
            cursor = page.get("next_page")
            if not cursor:
                return found
            if not isinstance(cursor, str) or cursor == params.get("next_page"):
                raise ResolveError("quay API repository: bad next_page %r" % (cursor,))
            params["next_page"] = cursor

    def tags(self, org, name, tag=None):
        """[(tag, start_ts or None)] of the active tags (or just tag) of org/name."""
        path = "repository/%s/%s/tag/" % (org, name)
        params = {"onlyActiveTags": "true", "limit": 1 if tag else QUAY_PAGE, "page": 1}
        if tag:
            params["specificTag"] = tag
        found = []
        while True:
            page = self._get(path, params)
            if page is None:
                return found            # 0.4.17: 404 means no such tag
            listed = page.get("tags")
            if not isinstance(listed, list) or not all(
                    isinstance(t, dict) and isinstance(t.get("name"), str) for t in listed):
                raise ResolveError("quay API %s: not a list of tags" % path)
            for item in listed:
                started = item.get("start_ts")
                if tag is None or item["name"] == tag:
                    found.append((item["name"], started if isinstance(started, (int, float))
                                  and not isinstance(started, bool) else None))
            if tag or page.get("has_additional") is not True:
                return found
            params["page"] += 1


# -- destinations -----------------------------------------------------------------------
def _destination(uri, item, many):
    """The destination URI of one found image."""
    if uri.scheme == "registry":
        path, query = uri.path, _query(uri)
        if _has_tag(path):
            if many:
                raise ResolveError(MANY_TAGS)
            return uri.original
        ref = parse_reference(path)
        if item.tag is None:
            raise ResolveError("a digest source needs a destination tag (registry://%s:TAG)"
                               % ref.name)
        name = ref.name + ("/" + item.repository if item.repository else "")
        return "registry://%s:%s%s" % (name, item.tag, query)
    if uri.scheme == "ocidir":
        path, tag = split_path(uri.path)
        if tag is not None:
            if many:
                raise ResolveError("a destination for many tags names a layout, not a tag")
            return uri.original
        if item.tag is None:
            raise ResolveError("a digest source needs a destination tag (ocidir://%s:TAG)"
                               % path)
        name = item.tag if item.repository is None else "%s_%s" % (
            item.repository.replace("/", "_"), item.tag)
        return "ocidir://%s:%s%s" % (_quoted(path), name, _query(uri))
    if uri.scheme == "dir" and (not many or uri.options.get("unique_names") is True):
        return uri.original
    if many:
        raise ResolveError("%s:// holds one image, and this source names many (use "
                           "registry://, ocidir:// or dir://PATH?unique_names=true)"
                           % uri.scheme)
    return uri.original
