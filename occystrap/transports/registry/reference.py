"""Image references for registry://: `[USER[:PASS]@]HOST[:PORT]/NAME[:TAG][@DIGEST]`.

0.4.17 split the tag at the last `:` and nothing else (A.4): `user:pass@` stayed in the
host, `@sha256:` digests were not understood, and Docker Hub names were sent literally.
Here the grammar is the one of the OCI distribution spec ("Pulling manifests": a
repository name matches `[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+(...))*`, a tag
`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`) and the OCI image spec's digest grammar
(`algorithm:encoded`, sha256 = 64 lowercase hex).  The first path component is always
the registry host, as in 0.4.17: `registry://` has no default registry.
"""
import dataclasses
import re
import urllib.parse

from ...errors import URIParseError
from ...model import DIGEST_RES
from ...uri import without_password

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(r"^%s(?:/%s)*$" % (_COMPONENT, _COMPONENT))
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                     r"|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?$")
DEFAULT_TAG = "latest"
# Docker Hub's names: the CLI and ~/.docker/config.json say docker.io / index.docker.io,
# but the distribution API lives on registry-1.docker.io and official images are
# `library/NAME` there.
DOCKER_HUB_HOSTS = frozenset(("docker.io", "index.docker.io", "registry-1.docker.io",
                              "registry.hub.docker.com"))
DOCKER_HUB_API_HOST = "registry-1.docker.io"


@dataclasses.dataclass(frozen=True)
class Reference:
    """One image in one registry.  `tag` is always set ("latest" by default);
    `digest` wins over it when both are given (`.reference`)."""

    host: str
    repository: str
    tag: str = DEFAULT_TAG
    digest: str = None
    # Kept out of repr/eq so a logged or compared Reference never shows a password.
    username: str = dataclasses.field(default=None, repr=False, compare=False)
    password: str = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def reference(self):
        """What goes after /manifests/ in the API: the digest if pinned, else the tag."""
        return self.digest or self.tag

    @property
    def is_docker_hub(self):
        return self.host.lower() in DOCKER_HUB_HOSTS

    @property
    def api_host(self):
        """The host to talk the distribution API to (Docker Hub's is not docker.io)."""
        return DOCKER_HUB_API_HOST if self.is_docker_hub else self.host

    @property
    def name(self):
        """`host/repository`, without tag or digest."""
        return "%s/%s" % (self.host, self.repository)

    def __str__(self):
        if self.digest:
            return "%s@%s" % (self.name, self.digest)
        return "%s:%s" % (self.name, self.tag)


def _fail(path, why):
    raise URIParseError("Invalid registry reference %r: %s (expected "
                        "HOST[:PORT]/NAME[:TAG] or HOST[:PORT]/NAME@sha256:HEX)"
                        % (without_password(path), why))


def _check_digest(path, digest):
    algorithm, _, encoded = digest.partition(":")
    if not encoded:
        _fail(path, "digest %r has no algorithm prefix (want sha256:<64 hex>)" % digest)
    check = DIGEST_RES.get(algorithm)
    if check is None:
        _fail(path, "unsupported digest algorithm %r" % algorithm)
    if not check.match(encoded):
        _fail(path, "malformed %s digest %r" % (algorithm, digest))


def parse_reference(path):
    """Parse the part of a registry:// URI after the scheme into a Reference.

    :raises URIParseError: no repository, a bad host, name, tag or digest.
    """
    if not isinstance(path, str) or not path.strip():
        raise URIParseError("Invalid registry reference: empty (expected HOST/NAME[:TAG])")
    path = path.strip()
    if path.lower().startswith("registry://"):
        path = path[len("registry://"):]
    original = path
    head, slash, rest = path.partition("/")
    username = password = None
    if "@" in head:
        # userinfo is percent-decoded, so a password may hold '@', ':' or '/' as %40...
        userinfo, _, head = head.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username = urllib.parse.unquote(user) or None
        password = urllib.parse.unquote(secret) if colon else None
    if not head:
        _fail(original, "no registry host")
    host = HOST_RE.match(head)
    if not host:
        _fail(original, "bad registry host %r" % head)
    if host.group("port") is not None and not 0 < int(host.group("port")) < 65536:
        _fail(original, "port %s is not from 1 to 65535" % host.group("port"))
    if not slash or not rest.strip("/"):
        _fail(original, "no repository name after the host %r" % head)

    digest = None
    if "@" in rest:
        rest, _, digest = rest.partition("@")
        _check_digest(original, digest)
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, _, tag = rest.rpartition(":")
        if not TAG_RE.match(tag):
            _fail(original, "bad tag %r (allowed: letters, digits, '_', '.', '-'; at most "
                            "128, not starting with '.' or '-')" % tag)
    repository = rest
    if not repository:
        _fail(original, "no repository name")
    if not NAME_RE.match(repository):
        why = ("repository names must be lowercase" if NAME_RE.match(repository.lower())
               else "bad repository name")
        _fail(original, "%s: %r" % (why, repository))
    if len(head) + 1 + len(repository) > 255:
        _fail(original, "name longer than 255 characters")

    if head.lower() in DOCKER_HUB_HOSTS and "/" not in repository:
        repository = "library/" + repository
    return Reference(head, repository, tag or DEFAULT_TAG, digest,
                     username=username, password=password)
