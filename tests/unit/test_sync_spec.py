"""sync.spec: a spec file's grammar, its defaults, and one SpecError line for every
problem (never a traceback, whatever the YAML)."""
import pytest

from occystrap.errors import OccystrapError, SpecError
from occystrap.mirror.model import Entry
from occystrap.mirror.semver import Constraint
from occystrap.mirror.spec import load_spec, parse_spec

SRC = "registry://docker.io/library/busybox"
DST = "registry://mirror.example:5000/busybox"


def entry(**values):
    values.setdefault("source", SRC)
    values.setdefault("destination", DST)
    return values


def one(document):
    [result] = parse_spec(document, "spec.yaml")
    return result


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


def test_spec_error_is_an_occystrap_error():
    assert issubclass(SpecError, OccystrapError)


def test_minimal_entry():
    result = one({"sync": [entry()]})
    assert result == Entry(number=1, source=SRC, destination=DST)
    assert result.takes("anything")


def test_full_file(tmp_path):
    path = write(tmp_path, """
defaults:
  semver: ">=1.2, <2"
  filters: [normalize-timestamps]
  platforms: linux/amd64,linux/arm64
  compression: zstd
sync:
  - source: registry://docker.io/library/busybox
    destination: ocidir:///srv/mirror/busybox
    tags: ['1\\.\\d+', latest]
  - source: quay://myorg/app-*?token=abc&since=2024-01-01
    destination: registry://mirror.example/app
    semver: ^3
    filters: ["exclude:pattern=**/*.pyc,*.log"]
    compression: gzip
  - source: oci-archive:///tmp/in.tar
    destination: dir:///tmp/out
    tags: v.*
    platforms: null
""")
    first, second, third = load_spec(path)
    assert [e.number for e in (first, second, third)] == [1, 2, 3]
    assert first.destination == "ocidir:///srv/mirror/busybox"
    assert [rx.pattern for rx in first.tags] == [r"1\.\d+", "latest"]
    assert isinstance(first.semver, Constraint) and str(first.semver) == ">=1.2, <2"
    assert first.filters == ("normalize-timestamps",)
    assert first.platforms == "linux/amd64,linux/arm64"
    assert first.compression == "zstd"
    # entry values replace the defaults' (filters: the whole list)
    assert str(second.semver) == "^3" and second.tags is None
    assert second.filters == ("exclude:pattern=**/*.pyc,*.log",)
    assert second.compression == "gzip"
    # null unsets a default
    assert third.platforms is None and [rx.pattern for rx in third.tags] == ["v.*"]


@pytest.mark.parametrize("tags, takes, refuses", [
    (["latest"], ["latest"], ["latest2", "xlatest", "Latest"]),
    (["1\\.2.*"], ["1.2", "1.2.3"], ["11.2", "v1.2"]),       # full match, not search
    ("v.*", ["v1", "v"], ["1v"]),                            # one string: a list of one
    (["a|b"], ["a", "b"], ["ab"]),                           # alternation is anchored too
    (["alpine", "3\\.\\d+"], ["alpine", "3.19"], ["3.19-alpine"]),
])
def test_tags_full_match(tags, takes, refuses):
    result = one({"sync": [entry(tags=tags)]})
    assert [tag for tag in takes if not result.takes(tag)] == []
    assert [tag for tag in refuses if result.takes(tag)] == []


def test_tags_and_semver_both_apply():
    result = one({"sync": [entry(tags=["v.*"], semver="^1")]})
    assert result.takes("v1.4") and not result.takes("1.4") and not result.takes("v2.0")
    assert not result.takes("vlatest")


def test_defaults_apply_to_every_entry_and_entries_override():
    result = parse_spec({"defaults": {"tags": ["x"], "compression": "gzip"},
                         "sync": [entry(), entry(tags="y", compression=None), entry()]},
                        "s")
    assert [[rx.pattern for rx in e.tags] for e in result] == [["x"], ["y"], ["x"]]
    assert [e.compression for e in result] == ["gzip", None, "gzip"]


@pytest.mark.parametrize("source", [
    "registry://docker.io/library/busybox:1.36", "REGISTRY://docker.io/library/busybox",
    "ocidir:///tmp/layout", "dir:///tmp/d", "directory:///tmp/d", "oci-archive:/tmp/a.tar",
    "quay://myorg", "quay://myorg/app-*:v1?token=t&since=2024-01-01",
])
def test_sources_accepted(source):
    assert one({"sync": [entry(source=source)]}).source == source


@pytest.mark.parametrize("destination", [
    "registry://h/x", "ocidir:///tmp/o", "oci-archive:///tmp/o.tar", "dir:///tmp/d",
])
def test_destinations_accepted(destination):
    assert one({"sync": [entry(destination=destination)]}).destination == destination


# top-level problems: "<name>: <what>"
TOP = [
    (None, "spec.yaml: the spec must be a mapping with a sync: list, not an empty document"),
    ([], "spec.yaml: the spec must be a mapping with a sync: list, not a list"),
    ("sync", "spec.yaml: the spec must be a mapping with a sync: list, not 'sync'"),
    (3, "spec.yaml: the spec must be a mapping with a sync: list, not the number 3 (quote"),
    ({}, "spec.yaml: missing sync: (the list of entries)"),
    ({"defaults": {}}, "spec.yaml: missing sync: (the list of entries)"),
    ({"sync": [entry()], "Sync": 1},
     "spec.yaml: unknown top-level key 'Sync' (accepted: sync, defaults)"),
    ({"sync": [entry()], 7: 1}, "spec.yaml: unknown top-level key the number 7"),
    ({"sync": None}, "spec.yaml: sync: must be a non-empty list of entries, not null"),
    ({"sync": []}, "spec.yaml: sync: must be a non-empty list of entries, not an empty list"),
    ({"sync": entry()}, "spec.yaml: sync: must be a non-empty list of entries, not a mapping"),
    ({"sync": "x"}, "spec.yaml: sync: must be a non-empty list of entries, not 'x'"),
    ({"sync": [entry()], "defaults": []},
     "spec.yaml: defaults: defaults must be a mapping, not a list"),
    ({"sync": [entry()], "defaults": {"source": SRC}},
     "spec.yaml: defaults: unknown key 'source' (accepted: tags, semver, filters, "
     "platforms, compression)"),
    ({"sync": [entry()], "defaults": {"compression": "lz4"}},
     "spec.yaml: defaults: compression must be gzip or zstd, not 'lz4'"),
    ({"sync": [entry()], "defaults": {"semver": ">=x"}},
     "spec.yaml: defaults: semver: semver constraint '>=x': 'x' is not a version"),
]


@pytest.mark.parametrize("document, message", TOP)
def test_top_level_errors(document, message):
    with pytest.raises(SpecError) as caught:
        parse_spec(document, "spec.yaml")
    assert str(caught.value).startswith(message)


# entry problems: "<name>: entry N: <what>", N counted from 1
ENTRY = [
    ("x", "entry 2: an entry must be a mapping, not 'x'"),
    ([SRC], "entry 2: an entry must be a mapping, not a list"),
    (None, "entry 2: an entry must be a mapping, not null"),
    (entry(tag="x"), "entry 2: unknown key 'tag' (accepted: source, destination, tags, "
                     "semver, filters, platforms, compression)"),
    ({"destination": DST}, "entry 2: missing source"),
    ({"source": SRC}, "entry 2: missing destination"),
    (entry(source=None), "entry 2: source must be a string, not null"),
    (entry(source=5), "entry 2: source must be a string, not the number 5"),
    (entry(source=" "), "entry 2: source must not be empty"),
    (entry(source="busybox"), "entry 2: source: Missing scheme in URI: busybox"),
    (entry(source="registry://"),
     "entry 2: source: registry:// URI requires an image reference"),
    (entry(source="tar:///tmp/x.tar"), "entry 2: source scheme 'tar' is not one of "
                                       "registry, ocidir, dir, oci-archive, quay"),
    (entry(source="docker://busybox"), "entry 2: source scheme 'docker' is not one of"),
    (entry(destination="quay://org"), "entry 2: destination scheme 'quay' is not one of "
                                      "registry, ocidir, oci-archive, dir"),
    (entry(destination="oci:///tmp/b"), "entry 2: destination scheme 'oci' is not one of"),
    (entry(destination=["registry://h/x"]), "entry 2: destination must be a string, not a list"),
    (entry(tags=[]), "entry 2: tags must not be empty (leave it out, or null, for every tag)"),
    (entry(tags={"a": 1}), "entry 2: tags must be a list of strings, not a mapping"),
    (entry(tags=7), "entry 2: tags must be a list of strings, not the number 7"),
    (entry(tags=["ok", 1.10]), "entry 2: tags item 2 must be a string, not the number 1.1 "
                               "(quote it to make it a string)"),
    (entry(tags=["ok", ["nested"]]), "entry 2: tags item 2 must be a string, not a list"),
    (entry(tags=["a", "(b"]), "entry 2: tags item 2: bad regular expression '(b': missing )"),
    (entry(tags="*"), "entry 2: tags item 1: bad regular expression '*': nothing to repeat"),
    (entry(semver=1.2), "entry 2: semver must be a string, not the number 1.2"),
    (entry(semver=True), "entry 2: semver must be a string, not the boolean true"),
    (entry(semver=""), "entry 2: semver must not be empty"),
    (entry(semver=">=1.2 <2"), "entry 2: semver: semver constraint '>=1.2 <2': '>=1.2 <2' "
                               "is not a comparator"),
    (entry(semver="^1 ||"), "entry 2: semver: semver constraint '^1 ||': empty alternative"),
    (entry(filters="frobnicate"), "entry 2: filters item 1: Unknown filter: frobnicate"),
    (entry(filters=["normalize-timestamps", "exclude"]),
     "entry 2: filters item 2: exclude filter requires pattern option"),
    (entry(filters=["exclude:pattern"]),
     "entry 2: filters item 1: Invalid filter option (missing =): pattern"),
    (entry(filters=[3]), "entry 2: filters item 1 must be a string, not the number 3"),
    (entry(filters={"exclude": "x"}), "entry 2: filters must be a list of strings, not a mapping"),
    (entry(platforms="linux"),
     "entry 2: platforms: platform 'linux' is not all or OS/ARCH[/VARIANT][,...]"),
    (entry(platforms="linux/amd64,"), "entry 2: platforms: platform '' is not all or"),
    (entry(platforms=["linux/amd64"]), "entry 2: platforms must be a string, not a list"),
    (entry(platforms=""), "entry 2: platforms must not be empty"),
    (entry(compression="lz4"), "entry 2: compression must be gzip or zstd, not 'lz4'"),
    (entry(compression="GZIP"), "entry 2: compression must be gzip or zstd, not 'GZIP'"),
    (entry(compression=["gzip"]), "entry 2: compression must be gzip or zstd, not a list"),
    (entry(compression=9), "entry 2: compression must be gzip or zstd, not the number 9"),
]


@pytest.mark.parametrize("bad, message", ENTRY)
def test_entry_errors(bad, message):
    with pytest.raises(SpecError) as caught:
        parse_spec({"sync": [entry(), bad, entry()]}, "mirror.yaml")
    assert str(caught.value).startswith("mirror.yaml: " + message)


def test_long_values_are_shortened_in_messages():
    with pytest.raises(SpecError) as caught:
        parse_spec({"sync": [entry(compression="z" * 10000)]}, "s")
    assert len(str(caught.value)) < 200 and "..." in str(caught.value)


def test_name_is_the_path_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "sync: 1\n", "my spec.yml")
    with pytest.raises(SpecError) as caught:
        load_spec("./my spec.yml")
    assert str(caught.value).startswith("./my spec.yml: sync: must be")


def test_missing_file(tmp_path):
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "absent.yaml")
    assert str(caught.value) == "%s: cannot read: No such file or directory" % (
        tmp_path / "absent.yaml")


def test_a_directory(tmp_path):
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path)
    assert str(caught.value).startswith("%s: cannot read: " % tmp_path)


# YAML problems: "<name>: YAML syntax error at line N: ..."
SYNTAX = [
    ("sync:\n  - source: [unclosed\n", "at line 3: "),
    ("sync:\n  - source: a\n   destination: b\n", "at line 3: "),
    ("sync:\n  - semver: >=1.2\n", "at line 2: "),          # > is a block scalar: quote it
    ("sync: *nowhere\n", "at line 1: found undefined alias 'nowhere'"),
    ("a: 1\n---\nb: 2\n", "at line 2: "),                    # two documents
    ("sync:\n\t- x\n", "at line 2: "),
    ("sync: !!python/object:os.system x\n", "at line 1: could not determine a constructor"),
    ("? [a, b]\n: c\n", "at line 1: found unhashable key"),
    ('sync: "\\q"\n', "at line 1: found unknown escape character"),
    ("key: value\n  bad: indent\n", "at line 2: "),
]


@pytest.mark.parametrize("text, message", SYNTAX)
def test_yaml_syntax_errors(tmp_path, text, message):
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, text))
    assert str(caught.value).startswith("%s: YAML syntax error %s" % (tmp_path / "spec.yaml",
                                                                      message))


def test_not_text(tmp_path):
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, b"sync: \xff\xfe\x00\n"))
    assert str(caught.value).startswith("%s: YAML error: " % (tmp_path / "spec.yaml"))


# odd documents: every one a SpecError
HEAD = "sync:\n  - source: registry://docker.io/x\n    destination: registry://h/x\n"
ODD = [
    ("", "the spec must be a mapping with a sync: list, not an empty document"),
    ("# only a comment\n", "not an empty document"),
    ("- source: a\n", "the spec must be a mapping with a sync: list, not a list"),
    ("just words\n", "not 'just words'"),
    ("42\n", "not the number 42"),
    ("~\n", "not an empty document"),
    ("true\n", "not the boolean true"),
    ("2024-01-01\n", "not a date"),
    ("!!binary aGVsbG8=\n", "not binary data"),
    ("sync: [[[[[]]]]]\n", "entry 1: an entry must be a mapping, not a list"),
    ("sync: [{source: {a: {b: [c]}}, destination: x}]\n",
     "entry 1: source must be a string, not a mapping"),
    (HEAD + "    tags: [{a: b}]\n",
     "entry 1: tags item 1 must be a string, not a mapping"),
    (HEAD + "    semver: 1.10\n",
     "entry 1: semver must be a string, not the number 1.1 (quote it"),
    (HEAD + "    tags: [1.10]\n",
     "entry 1: tags item 1 must be a string, not the number 1.1"),
    (HEAD + "    semver: =\n",
     "YAML syntax error at line 4: could not determine a constructor"),
    (HEAD + "    tags:\n",
     None),                                                  # null: every tag
    ("sync: [{source: 'registry://docker.io/x', destination: 'registry://h/x', 2: 3}]\n",
     "entry 1: unknown key the number 2"),
    ("sync: [{source: 'registry://docker.io/x', destination: 'registry://h/x', null: 3}]\n",
     "entry 1: unknown key null"),
    ("{sync: [{source: 'registry://docker.io/x', destination: 'registry://h/x'}], [1]: 2}\n",
     "YAML syntax error at line 1: found unhashable key"),
    ("base: &b {source: 'registry://docker.io/x', destination: 'registry://h/x'}\nsync: [*b]\n",
     "unknown top-level key 'base'"),
    ("sync:\n  - &b {source: 'registry://docker.io/x', destination: 'registry://h/x'}\n"
     "  - {<<: *b, tags: [v1]}\n", None),                    # merge keys work
]


@pytest.mark.parametrize("text, message", ODD)
def test_odd_documents(tmp_path, text, message):
    path = write(tmp_path, text)
    if message is None:
        assert load_spec(path)
        return
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(str(path) + ": ")


def bomb(levels=10, width=9):
    """A flow list whose items are anchored lists of the previous one, `width` times:
    its last item expands to width**levels strings if anything walked it."""
    items = ["&a0 [%s]" % ", ".join(["lol"] * width)]
    for n in range(1, levels):
        items.append("&a%d [%s]" % (n, ", ".join(["*a%d" % (n - 1)] * width)))
    return "[%s]" % ", ".join(items)


E1 = "sync: [{source: 'registry://docker.io/x', destination: 'registry://h/x', %s: %s}]\n"


@pytest.mark.parametrize("text, message", [
    ("sync: %s\n" % bomb(), "entry 1: an entry must be a mapping, not a list"),
    ("defaults: {tags: %s}\nsync: [1]\n" % bomb(),
     "defaults: tags item 1 must be a string, not a list"),
    (E1 % ("tags", bomb()), "entry 1: tags item 1 must be a string, not a list"),
    (E1 % ("filters", bomb()), "entry 1: filters item 1 must be a string, not a list"),
    (E1 % ("semver", bomb()), "entry 1: semver must be a string, not a list"),
    (E1 % ("platforms", bomb()), "entry 1: platforms must be a string, not a list"),
    (E1 % ("compression", bomb()), "entry 1: compression must be gzip or zstd, not a list"),
    ("sync: [{source: %s, destination: 'registry://h/x'}]\n" % bomb(),
     "entry 1: source must be a string, not a list"),
    ("sync:\n  - %s\n" % bomb(), "entry 1: an entry must be a mapping, not a list"),
])
def test_billion_laughs(tmp_path, text, message):
    """Aliases stay shared references: checks and messages never expand them."""
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value) == "%s: %s" % (path, message)


def test_huge_shared_value_is_not_walked():
    nested = [[[[]]]] * 10 ** 6
    with pytest.raises(SpecError) as caught:
        parse_spec({"defaults": {"tags": [nested]}, "sync": [entry()]}, "s")
    assert str(caught.value) == "s: defaults: tags item 1 must be a string, not a list"


@pytest.mark.parametrize("text", [
    "sync: " + "[" * 20000 + "]" * 20000 + "\n",
    "sync: " + "{a: " * 20000 + "1" + "}" * 20000 + "\n",
    "sync:\n" + "".join("  " * depth + "- \n" for depth in range(1, 5000)),
    "sync: &x [" * 3000 + "]" * 3000 + "\n",
], ids=["flow lists", "flow mappings", "block lists", "anchored lists"])
def test_deeply_nested_is_a_spec_error(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(str(path) + ": ")


def test_deep_but_loadable_value_is_reported_shallowly():
    value = []
    for _ in range(100000):
        value = [value]
    with pytest.raises(SpecError) as caught:
        parse_spec({"sync": [entry(filters=value)]}, "s")
    assert str(caught.value) == "s: entry 1: filters item 1 must be a string, not a list"


def test_returns_entries_in_order():
    result = parse_spec({"sync": [entry(source="ocidir:///a"), entry(source="ocidir:///b")]},
                        "s")
    assert [(e.number, e.source) for e in result] == [(1, "ocidir:///a"), (2, "ocidir:///b")]
