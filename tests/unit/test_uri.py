"""URI and filter-spec grammar (0.4.17 A.4/A.5, with the E.2 #9 fix)."""
import pytest

from occystrap.errors import URIParseError
from occystrap.uri import coerce, parse_filter, parse_uri


@pytest.mark.parametrize("text, scheme, path", [
    ("tar://foo.tar", "tar", "foo.tar"),
    ("tar:///abs/x.tar", "tar", "/abs/x.tar"),
    ("tar://localhost/p", "tar", "/p"),
    ("file:x.tar", "tar", "x.tar"),
    ("directory:///out", "dir", "/out"),
    ("DIR:///out?expand=true", "dir", "/out"),
    ("registry://127.0.0.1:5055/demo/app:1.0", "registry", "127.0.0.1:5055/demo/app:1.0"),
])
def test_parse(text, scheme, path):
    uri = parse_uri(text)
    assert (uri.scheme, uri.path) == (scheme, path)


def test_query_values_are_coerced_and_repeated_keys_listed():
    uri = parse_uri("dir:///o?expand=yes&unique_names=0&n=12&x=a&x=b")
    assert uri.options == {"expand": True, "unique_names": False, "n": 12, "x": ["a", "b"]}


def test_image_and_tag():
    assert parse_uri("registry://h:5000/a/b:1.2").image_and_tag() == ("h:5000/a/b", "1.2")
    assert parse_uri("registry://h:5000/a/b").image_and_tag() == ("h:5000/a/b", "latest")
    assert parse_uri("registry://h/a@sha256:ab").image_and_tag() == ("h/a", "sha256:ab")


@pytest.mark.parametrize("text, message", [
    ("nocolon", "Missing scheme in URI: nocolon"),
    ("tar://", "tar:// URI requires a path"),
    ("registry://", "registry:// URI requires an image reference"),
])
def test_errors(text, message):
    with pytest.raises(URIParseError, match=message.replace("/", "/")):
        parse_uri(text)


def test_filter_specs():
    spec = parse_filter("Normalize_Timestamps:ts=5")
    assert (spec.name, spec.options) == ("normalize-timestamps", {"ts": 5})
    # several patterns in one option: a comma segment without = continues the value
    assert parse_filter("exclude:pattern=*.pyc,tmp/*, .git").options == \
        {"pattern": "*.pyc,tmp/*,.git"}
    assert parse_filter("search:pattern=x,regex=true").options == {"pattern": "x", "regex": True}
    with pytest.raises(URIParseError, match="missing =.*: bad"):
        parse_filter("exclude:bad")


def test_coerce():
    assert [coerce(v) for v in ["true", "YES", "1", "no", "0", "17", "x"]] == \
        [True, True, True, False, False, 17, "x"]


def test_filter_options_keep_the_typed_text():
    # ts=0 coerces to False and pattern=1 to True in 0.4.17's grammar; filters that need
    # numbers or patterns read the text as typed
    spec = parse_filter("normalize-timestamps:ts=0")
    assert spec.options == {"ts": False} and spec.raw == {"ts": "0"}
    from occystrap.filters import build_filter
    assert build_filter("normalize-timestamps:ts=1").timestamp == 1
    assert build_filter("normalize-timestamps:timestamp=0").timestamp == 0
    assert build_filter("exclude:pattern=1").globs.patterns == (b"1",)
