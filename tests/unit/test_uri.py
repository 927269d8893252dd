"""URI and filter-spec grammar (0.4.17 A.4/A.5, with the E.2 #9 fix)."""
import json

import pytest

from occystrap.errors import URIParseError
from occystrap.filters import build_filter
from occystrap.jsonparse import JSONDocumentError, parse_json, parse_json_prefix
from occystrap.transports import checked
from occystrap.uri import (boolean, check_options, coerce, integer, parse_filter, parse_uri,
                           without_password)


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


# -- declared options ----------------------------------------------------------------------

# Every URI option 0.4.17 accepted (spec A.4), with a value it would have taken.
OPTIONS_0417 = [
    ("registry://h:5000/n:1?os=linux&arch=arm64&variant=v8&username=u&password=1234"
     "&insecure=true&max_workers=8", "input"),
    ("registry://h:5000/n:1?architecture=arm64", "input"),
    ("docker://n:1?socket=/run/docker.sock", "input"),
    ("dockerpush://n:1?socket=/run/docker.sock", "input"),
    ("tar:///x.tar", "input"),
    ("tar:///x.tar", "output"),
    ("dir:///x?unique_names=true&expand=yes", "output"),
    ("oci:///x", "output"),
    ("mounts:///x", "output"),
    ("docker://n:1?socket=/s", "output"),
    ("registry://h:5000/n:1?username=u&password=p&insecure=1&compression=zstd&max_workers=2",
     "output"),
]


@pytest.mark.parametrize("text, role", OPTIONS_0417)
def test_every_0417_uri_option_is_accepted(text, role):
    uri = parse_uri(text)
    checked(uri, role)


def test_checked_options_are_typed_as_declared():
    uri = checked(parse_uri("registry://h:5000/n:1?password=1234&insecure=yes&"
                            "architecture=arm64&max_workers=8"), "input")
    # 0.4.17's coercion made the password an int; declared as text it stays as typed
    assert uri.options == {"password": "1234", "insecure": True, "arch": "arm64",
                           "max_workers": 8}


@pytest.mark.parametrize("spec", [
    "normalize-timestamps", "normalize-timestamps:timestamp=5", "normalize_timestamps:ts=0",
    "search:pattern=*.py,regex=false,script_friendly=true", "search:pattern=x,script-friendly=1",
    "inspect:file=/tmp/x.jsonl", "exclude:pattern=*.pyc",
])
def test_every_0417_filter_key_is_accepted(spec):
    build_filter(spec)


def test_filter_values_are_typed():
    assert build_filter("normalize-timestamps:ts=0").timestamp == 0
    search = build_filter("search:pattern=1,regex=no,script-friendly=YES")
    assert (search.pattern, search.regex, search.script_friendly) == ("1", False, True)


@pytest.mark.parametrize("value, expected", [("true", True), ("Yes", True), ("1", True),
                                             ("FALSE", False), ("no", False), ("0", False)])
def test_boolean_words(value, expected):
    assert boolean(value) is expected


@pytest.mark.parametrize("value", ["maybe", "", "2", "on", "y"])
def test_boolean_refuses_other_words(value):
    with pytest.raises(ValueError, match="must be true or false"):
        boolean(value)


@pytest.mark.parametrize("low, high, value, message", [
    (1, 10, "0", "from 1 to 10"), (1, 10, "11", "from 1 to 10"), (1, None, "x", "at least 1"),
    (None, None, "1.5", "must be an integer, not '1.5'")])
def test_integer_ranges(low, high, value, message):
    with pytest.raises(ValueError, match=message):
        integer(low, high)(value)


def test_check_options_names_the_option_and_what_is_accepted():
    declared = {"expand": boolean, "n": integer(1)}
    assert check_options({"expand": "1", "m": "2"}, declared, {"m": "n"}) == \
        {"expand": True, "n": 2}
    with pytest.raises(URIParseError, match=r"Unknown option 'x' for here \(accepted: "
                                            r"expand, m, n\)"):
        check_options({"x": "1"}, declared, {"m": "n"}, where="here")
    with pytest.raises(URIParseError, match="here: option n must be an integer of at least 1"):
        check_options({"n": "0"}, declared, where="here")


@pytest.mark.parametrize("text", ["tar:///a%00b", "dir:///x?expand=%00", "docker://a%00:1",
                                  "registry://h/n:1?socket%00=1"])
def test_nul_bytes_are_refused(text):
    with pytest.raises(URIParseError, match="contains a NUL byte"):
        parse_uri(text)


# -- untrusted JSON -------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    (b"[" * 100000 + b"]" * 100000, "nested more than 100 levels deep"),
    (b"[" * 101 + b"]" * 101, "nested more than 100 levels deep"),
    (b'{"a": ' * 101 + b"1" + b"}" * 101, "nested more than 100 levels deep"),
    (b"NaN", "NaN is not a JSON value"), (b'{"x": -Infinity}', "-Infinity is not a JSON value"),
], ids=["very-deep", "101-lists", "101-objects", "nan", "infinity"])
def test_parse_json_refusals_are_value_errors(data, message):
    with pytest.raises(JSONDocumentError, match=message):
        parse_json(data)


def test_parse_json_takes_what_json_takes_up_to_the_limit():
    nested = b"[" * 100 + b"]" * 100
    assert parse_json(nested) == json.loads(nested)
    assert parse_json('{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert parse_json_prefix('{"a": 1} {"b": 2}') == ({"a": 1}, 8)


@pytest.mark.parametrize("text, shown", [
    ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
    ("redis://u:p@ss@h/0", "redis://u:***@h/0"),           # the last @ ends the user part
    ("redis://:ab/cd+ef@h:6379/0", "redis://:***@h:6379/0"),  # and a / in it is hidden
    ("registry://u:p/w@host/app@sha256:" + "b" * 64,
     "registry://u:***@host/app@sha256:" + "b" * 64),
    ("registry://u:pw@host:5000/team/app:1", "registry://u:***@host:5000/team/app:1"),
    ("u:pw@host:5000/team/app", "u:***@host:5000/team/app"),  # a reference, no scheme
    ("registry://u@host/app", "registry://u@host/app"),       # no password: as it was
    ("registry://host/team/app@sha256:" + "a" * 64, "registry://host/team/app@sha256:"
     + "a" * 64),                                              # an @ in the path stays
])
def test_without_password(text, shown):
    assert without_password(text) == shown


def test_portable_filter_specs_write_out_what_the_environment_gave(monkeypatch):
    """A worker reads the sender's $SOURCE_DATE_EPOCH from the spec, and keys the cache
    and the provenance as the sender would."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    for text, portable in (("normalize-timestamps", "normalize-timestamps:ts=1700000000"),
                           ("normalize-timestamps:mode=clamp",
                            "normalize-timestamps:mode=clamp,ts=1700000000"),
                           ("normalize-timestamps:ts=5", "normalize-timestamps:ts=5"),
                           ("normalize-timestamps:", "normalize-timestamps:ts=1700000000"),
                           ("exclude:pattern=*.pyc", "exclude:pattern=*.pyc")):
        here = build_filter(text)
        assert here.portable_spec == portable
        monkeypatch.delenv("SOURCE_DATE_EPOCH")
        there = build_filter(portable)          # the worker's environment has none
        assert there.cache_token == here.cache_token
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
