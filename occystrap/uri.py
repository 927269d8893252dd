"""URI and filter-spec grammar (occystrap 0.4.17 reference, sections A.4 and A.5).

Parses `scheme://rest?query` into a URI and `name:k=v,...` into a FilterSpec.  No I/O.
Fixes over 0.4.17: a comma-separated value may hold several items (`exclude:pattern=a,b`
works, E.2 #9): a comma segment without `=` continues the previous value.

Every scheme and filter declares the options it takes ({name: value type}, see
check_options); 0.4.17 ignored misspelt options and used `?expand=maybe` as true, here
both are refused with an Error naming the option.
"""
import dataclasses
import urllib.parse

from .errors import URIParseError
from .model.schemes import ALIASES, PATH_SCHEMES



TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")


def coerce(value):
    """Type-coerce a query/filter value as 0.4.17 did: booleans, then ints, else str."""
    lowered = value.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    try:
        return int(value)
    except ValueError:
        return value


@dataclasses.dataclass(frozen=True)
class URI:
    scheme: str
    path: str               # a file path (PATH_SCHEMES), else HOST/NAME[:TAG]
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


def without_password(text):
    """text, a URL or a HOST/PATH reference, with the password of a user:password@ in
    front shown as ***, for messages.  The last @ (before a trailing @sha256:...
    digest) ends the user part, as a typed password may hold @ or / unescaped."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    body, digest_at, digest = rest.partition("@sha256:")
    userinfo, at, after = body.rpartition("@")
    if at and ":" in userinfo:
        body = "%s:***@%s" % (userinfo.split(":", 1)[0], after)
    return scheme + sep + body + digest_at + digest


def parse_uri(text):
    """Parse a source or destination URI.

    :raises URIParseError: for a missing scheme, an empty path, a malformed host part
        (`[::1/x`) or a NUL byte (`%00`: no file name or socket path can hold one).
    """
    if ":" not in text:
        raise URIParseError("Missing scheme in URI: %s" % text)
    scheme, rest = text.split(":", 1)
    scheme = ALIASES.get(scheme.lower(), scheme.lower())
    if not rest.startswith("//"):
        rest = "//" + rest
    try:
        parsed = urllib.parse.urlsplit("x:" + rest)
    except ValueError as exc:        # an unbalanced IPv6 bracket
        raise URIParseError("Invalid URI %s: %s" % (text, exc)) from None
    query = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
    if "\0" in urllib.parse.unquote(parsed.netloc + parsed.path) or \
            any("\0" in key + value for key, value in query):
        raise URIParseError("Invalid URI %s: it contains a NUL byte" % text.replace("\0", "\\0"))
    options = {}
    raw = {}
    for key, value in query:
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


# -- declared options -----------------------------------------------------------------
# A declaration maps each accepted option name to a value type: a function from the text
# as typed to the value, raising ValueError with what is accepted.

def text(value):
    """Any text, kept as typed (`?password=1234` stays a string, unlike 0.4.17)."""
    return value


def boolean(value):
    """true/yes/1 or false/no/0, in any case (the words 0.4.17's coercion knew)."""
    lowered = value.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise ValueError("must be true or false (also yes/no, 1/0), not %r" % value)


def integer(low=None, high=None):
    """A value type for whole numbers in [low, high] (either bound may be None)."""
    def parse(value):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
        if number is None or (low is not None and number < low) or \
                (high is not None and number > high):
            raise ValueError("must be %s, not %r" % (_describe_range(low, high), value))
        return number
    return parse


def choice(*words):
    """A value type for one of words (exactly as listed)."""
    def parse(value):
        if value not in words:
            raise ValueError("must be one of %s, not %r" % (", ".join(words), value))
        return value
    return parse


def _describe_range(low, high):
    if low is not None and high is not None:
        return "an integer from %d to %d" % (low, high)
    if low is not None:
        return "an integer of at least %d" % low
    if high is not None:
        return "an integer of at most %d" % high
    return "an integer"


def check_options(values, declared, aliases=None, where="URI"):
    """The declared, typed options of `values` ({name: text as typed}).

    aliases maps other accepted spellings to the declared name.  The result is keyed
    by declared names; a later spelling of the same option wins.
    :raises URIParseError: for an unknown name or a value its type refuses.
    """
    aliases = aliases or {}
    typed = {}
    for key, value in values.items():
        name = aliases.get(key, key)
        if name not in declared:
            accepted = ", ".join(sorted(set(declared) | set(aliases))) or "none"
            raise URIParseError("Unknown option %r for %s (accepted: %s)"
                                % (key, where, accepted))
        try:
            typed[name] = declared[name](value)
        except ValueError as exc:
            raise URIParseError("%s: option %s %s" % (where, key, exc)) from None
    return typed
