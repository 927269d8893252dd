"""sync.semver: tag versions, their ordering (semver.org 2.0), and constraints."""
import pytest

from occystrap.mirror.semver import parse_constraint, parse_version

# each list is in strictly ascending order
ORDERED = [
    ["0.0.1", "0.1", "0.1.1", "1", "1.0.1", "1.1", "1.10", "2.0.0", "10"],
    # semver.org section 11's example
    ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
     "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"],
    ["1.2.3-1", "1.2.3-2", "1.2.3-10", "1.2.3-a", "1.2.3-a.1", "1.2.3"],
    ["1.2.3-RC", "1.2.3-rc"],                  # ASCII order: upper case first
]


@pytest.mark.parametrize("ordered", ORDERED)
def test_ordering(ordered):
    versions = [parse_version(tag) for tag in ordered]
    assert None not in versions
    for low, high in zip(versions, versions[1:]):
        assert low < high and high > low and low != high
    assert sorted(reversed(versions)) == versions


@pytest.mark.parametrize("first, second", [
    ("1", "1.0.0"), ("1.2", "1.2.0"), ("v1.2.3", "1.2.3"), ("1.2.3+build.5", "1.2.3"),
    ("1.2.3-rc.1+x", "1.2.3-rc.1"), ("v2", "2.0"),
])
def test_equal(first, second):
    assert parse_version(first) == parse_version(second)


@pytest.mark.parametrize("tag, fields", [
    ("1", (1, 0, 0, ())), ("v1.2", (1, 2, 0, ())), ("1.2.3-rc.1", (1, 2, 3, ("rc", "1"))),
    ("0.0.0", (0, 0, 0, ())), ("1.2.3-x-y.0", (1, 2, 3, ("x-y", "0"))),
    ("12345678901234567890.0.1", (12345678901234567890, 0, 1, ())),
])
def test_fields(tag, fields):
    version = parse_version(tag)
    assert (version.major, version.minor, version.patch, version.prerelease) == fields


@pytest.mark.parametrize("tag", [
    "", "latest", "v", "V1.2", "1.", "1..2", "1.2.3.4", "01", "1.02", "1.2.03",
    "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-a..b", "1.2.3 ", " 1.2.3", "1.2.3\n",
    "1.2-rc_1", "vv1", "1.2.3-rc.1+", "١.٢", "9" * 5000, None, 1, 1.2,
])
def test_not_a_version(tag):
    assert parse_version(tag) is None


# constraint, tags it allows, tags it refuses
CONSTRAINTS = [
    (">=1.2, <2", ["1.2", "1.2.0", "1.9.9", "v1.5"], ["1.1.9", "2", "2.0.0", "0.9"]),
    (">1.2", ["1.2.1", "3"], ["1.2", "1.2.0", "1.0"]),
    ("<=1.2", ["1.2.0", "0.1", "1.1.99"], ["1.2.1", "2"]),
    ("<1.2", ["1.1.99", "0"], ["1.2", "1.2.1"]),
    ("=1.2", ["1.2", "1.2.0", "v1.2.0+b"], ["1.2.1", "1.3"]),
    ("==1.2.3", ["1.2.3"], ["1.2.4"]),
    ("1.2.3", ["1.2.3", "v1.2.3"], ["1.2.4", "1.2"]),
    ("!=1.2.3", ["1.2.4", "1.2"], ["1.2.3", "v1.2.3+x"]),
    (">= 1.2 , < 2", ["1.5"], ["2.1"]),
    ("^1.2", ["1.2.0", "1.9.0", "1.99.99"], ["1.1.9", "2.0.0", "0.9"]),
    ("^1.2.3", ["1.2.3", "1.3"], ["1.2.2", "2"]),
    ("^0.3", ["0.3.0", "0.3.9"], ["0.2.9", "0.4.0", "1.0"]),
    ("^0.3.1", ["0.3.1", "0.3.9"], ["0.3.0", "0.4.0"]),
    ("^0", ["0.0.0", "0.0.9"], ["0.1.0", "1.0.0"]),
    ("~1.2", ["1.2.0", "1.2.99"], ["1.1.9", "1.3.0"]),
    ("~1.2.3", ["1.2.3", "1.2.4"], ["1.2.2", "1.3"]),
    ("~1", ["1.0", "1.99"], ["0.9", "2"]),
    ("<1 || >=3", ["0.9", "3", "4.1"], ["1", "2.9"]),
    ("^1 || ^3, !=3.1.0", ["1.5", "3.0", "3.1.1"], ["2.0", "3.1.0", "4"]),
    (">=1", ["1", "99"], ["latest", "stable", "1.2.3.4", "", "v"]),
    # prereleases only when a comparator names one of the same MAJOR.MINOR.PATCH
    (">=1.2", ["1.3.0"], ["1.3.0-rc.1", "1.2.0-rc.1"]),
    ("<2", ["1.9"], ["2.0.0-rc.1", "1.5.0-beta"]),
    (">=1.3.0-rc.1, <1.4", ["1.3.0-rc.1", "1.3.0-rc.2", "1.3.0", "1.3.5"],
     ["1.3.0-beta", "1.3.1-rc.1", "1.4.0-rc.1", "1.2.9"]),
    ("^1.2.3-beta.2", ["1.2.3-beta.2", "1.2.3-beta.10", "1.2.3-rc", "1.2.3", "1.8.0"],
     ["1.2.3-beta.1", "1.2.4-rc", "2.0.0-alpha", "2.0.0"]),
    ("~1.2.3-rc", ["1.2.3-rc.1", "1.2.9"], ["1.2.3-beta", "1.2.4-rc", "1.3.0"]),
    ("1.0.0-rc.1", ["1.0.0-rc.1", "1.0.0-rc.1+b"], ["1.0.0-rc.2", "1.0.0"]),
    ("!=1.2.3-rc.1", ["1.2.3"], ["1.2.3-rc.2", "1.2.3-rc.1"]),
    # the group that names the prerelease is the one that admits it
    ("^2 || >=1.5.0-rc, <1.6", ["1.5.0-rc.1", "2.1"], ["2.1.0-rc.1", "1.5.1-rc"]),
]


@pytest.mark.parametrize("text, allowed, refused", CONSTRAINTS)
def test_constraint(text, allowed, refused):
    constraint = parse_constraint(text)
    assert [tag for tag in allowed if not constraint.allows(tag)] == []
    assert [tag for tag in refused if constraint.allows(tag)] == []
    assert str(constraint) == text


def test_allows_a_parsed_version():
    assert parse_constraint("^1").allows(parse_version("1.4"))
    assert not parse_constraint("^1").allows(parse_version("2"))


@pytest.mark.parametrize("text, message", [
    ("", "must be a non-empty string"),
    ("   ", "must be a non-empty string"),
    (None, "must be a non-empty string"),
    (1.2, "must be a non-empty string"),
    (">=1.2,", "'>=1.2,': empty comparator around ,"),
    (",>=1.2", "empty comparator around ,"),
    (">=1 ||", "'>=1 ||': empty alternative around ||"),
    ("|| <2", "empty alternative around ||"),
    (">=1.2 <2", "'>=1.2 <2' is not a comparator (OP VERSION, OP one of >= <= == != > < = ^ ~)"),
    ("=>1.2", "'>1.2' is not a version"),
    (">=latest", "'latest' is not a version (MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD])"),
    ("1.x", "'1.x' is not a version"),
    ("*", "'*' is not a version"),
    ("^", "'^' is not a comparator"),
    (">=", "'>=' is not a comparator"),
    ("1.2 || <", "'<' is not a comparator"),
    ("~>1.2", "'>1.2' is not a version"),
    (">=1.02", "'1.02' is not a version"),
    ("1.2.3.4", "'1.2.3.4' is not a version"),
    ("^1 | ^2", "is not a comparator"),
])
def test_bad_constraint(text, message):
    with pytest.raises(ValueError) as caught:
        parse_constraint(text)
    assert message in str(caught.value)
