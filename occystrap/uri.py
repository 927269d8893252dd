"""URI and filter-spec grammar (occystrap 0.4.17 reference, sections A.4 and A.5).

Parses `scheme://rest?query` into a URI and `name:k=v,...` into a FilterSpec.  No I/O.
Fixes over 0.4.17: a comma-separated value may hold several items (`exclude:pattern=a,b`
works, E.2 #9): a comma segment without `=` continues the previous value.
"""
import dataclasses
import urllib.parse

from .errors import URIParseError

ALIASES = {"file": "tar", "directory": "dir"}
PATH_SCHEMES = frozenset(["tar", "dir", "oci", "mounts"])


def coerce(value):
    """Type-coerce a query/filter value as 0.4.17 did: booleans, then ints, else str."""
    lowered = value.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    try:
        return int(value)
    except ValueError:
        return value


@dataclasses.dataclass(frozen=True)
class URI:
    scheme: str
    path: str               # file path for tar/dir/oci/mounts, else HOST/NAME[:TAG]
    options: dict           # type-coerced values, as 0.4.17 had them
    original: str
    raw: dict = None        # the same values as typed (last one wins): `tag=1` stays "1"

    def image_and_tag(self):
        """Split NAME[:TAG|@DIGEST] at the last ':' after the last '/' (tag defaults to latest)."""
        name = self.path
        if "@" in name:
            name, digest = name.split("@", 1)
            return name, digest
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            return name[:colon], name[colon + 1:]
        return name, "latest"


def parse_uri(text):
    """Parse a source or destination URI.

    :raises URIParseError: for a missing scheme or an empty path.
    """
    if ":" not in text:
        raise URIParseError("Missing scheme in URI: %s" % text)
    scheme, rest = text.split(":", 1)
    scheme = ALIASES.get(scheme.lower(), scheme.lower())
    if not rest.startswith("//"):
        rest = "//" + rest
    parsed = urllib.parse.urlsplit("x:" + rest)
    options = {}
    raw = {}
    for key, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
        raw[key] = value
        value = coerce(value)
        if key in options:
            previous = options[key]
            options[key] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            options[key] = value
    if scheme in PATH_SCHEMES:
        netloc = parsed.netloc
        path = parsed.path
        if netloc and netloc != "localhost":
            path = netloc + path
        if not path:
            raise URIParseError("%s:// URI requires a path" % scheme)
    else:
        path = (parsed.netloc + parsed.path).strip("/")
        if not path:
            raise URIParseError("%s:// URI requires an image reference" % scheme)
    return URI(scheme, urllib.parse.unquote(path), options, text, raw)


@dataclasses.dataclass(frozen=True)
class FilterSpec:
    name: str
    options: dict           # type-coerced values, as 0.4.17 had them
    text: str
    raw: dict = None        # the same values as typed (patterns, paths, numbers like "0")

    def __post_init__(self):
        if self.raw is None:
            object.__setattr__(self, "raw", dict(self.options))


def parse_filter(text):
    """Parse `-f name[:k=v[,k=v...]]`.

    :raises URIParseError: when the first option has no `=`.
    """
    name, _, rest = text.partition(":")
    name = name.strip().lower().replace("_", "-")
    options = {}
    last = None
    if rest:
        for segment in rest.split(","):
            if "=" in segment:
                key, value = segment.split("=", 1)
                last = key.strip()
                options[last] = value.strip()
            elif last is None:
                raise URIParseError("Invalid filter option (missing =): %s" % segment)
            else:
                options[last] += "," + segment.strip()
    return FilterSpec(name, {k: coerce(v) for k, v in options.items()}, text, options)
