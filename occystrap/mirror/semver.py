"""Semantic versions of tags, and the constraint grammar of a spec's `semver:` key.

Versions follow semver.org 2.0 ordering, made lenient for image tags: a leading `v`,
and missing minor/patch parts (`1`, `1.2`) which count as 0.  Build metadata (`+x`) is
accepted and ignored.  Leading zeros (`01`) are refused, as semver does, so a tag that
is not a version is not mistaken for one.

Constraints: comparators joined by `,` (all must hold) in groups joined by `||` (any
group may hold).  A comparator is OP VERSION with OP one of `>= > <= < = == !=`, a
bare VERSION (equality), `^V` or `~V`:

    ^1.2.3  >=1.2.3 <2.0.0        ^0.3.1  >=0.3.1 <0.4.0  (major 0: minor is breaking)
    ~1.2.3  >=1.2.3 <1.3.0        ~1      >=1.0.0 <2.0.0  (only a major: any minor)

Prereleases follow npm: a prerelease tag (`1.3.0-rc.1`) is allowed only when a
comparator of the same group (other than `!=`) names a prerelease of the same
MAJOR.MINOR.PATCH, so `>=1.2` never picks up release candidates, while
`>=1.3.0-rc.1, <1.4` takes 1.3.0-rc.2 (but not 1.4.0-beta) — rc tags are opted into
per release, not by accident.
"""
import dataclasses
import re

_NUMBER = r"(?:0|[1-9][0-9]*)"
_IDENT = r"[0-9A-Za-z-]+"
_VERSION = re.compile(
    r"v?(%s)(?:\.(%s))?(?:\.(%s))?(?:-(%s(?:\.%s)*))?(?:\+%s(?:\.%s)*)?"
    % (_NUMBER, _NUMBER, _NUMBER, _IDENT, _IDENT, _IDENT, _IDENT), re.ASCII)
_LEADING_ZERO = re.compile(r"0[0-9]+")
OPERATORS = (">=", "<=", "==", "!=", ">", "<", "=", "^", "~")
_COMPARATOR = re.compile(r"(>=|<=|==|!=|>|<|=|\^|~)?\s*(\S+)")


@dataclasses.dataclass(frozen=True, order=True)
class Version:
    """A parsed version.  Only `key` takes part in comparisons, so build metadata and
    a `v` prefix do not make two versions differ."""
    key: tuple
    major: int = dataclasses.field(compare=False)
    minor: int = dataclasses.field(compare=False)
    patch: int = dataclasses.field(compare=False)
    prerelease: tuple = dataclasses.field(compare=False)   # identifiers, as typed
    parts: int = dataclasses.field(compare=False, default=3)  # how many numbers given

    @property
    def release(self):
        return (self.major, self.minor, self.patch)


def _identifier_key(identifier):
    # semver 11.4: numeric identifiers compare as numbers and sort before alphanumeric
    if identifier.isdigit():
        return (0, int(identifier), "")
    return (1, 0, identifier)


def parse_version(tag):
    """tag as a comparable Version, or None when it is not a version."""
    if not isinstance(tag, str):
        return None
    match = _VERSION.fullmatch(tag)
    if match is None:
        return None
    prerelease = tuple(match.group(4).split(".")) if match.group(4) else ()
    if any(_LEADING_ZERO.fullmatch(ident) for ident in prerelease):
        return None
    try:
        numbers = [int(group) if group is not None else 0 for group in match.groups()[:3]]
        pre_key = (0, tuple(_identifier_key(ident) for ident in prerelease)) \
            if prerelease else (1, ())
    except ValueError:                  # more digits than int() converts
        return None
    parts = sum(group is not None for group in match.groups()[:3])
    # a release sorts after all of its prereleases
    return Version(tuple(numbers) + (pre_key,), numbers[0], numbers[1], numbers[2],
                   prerelease, parts)


def _plain(major, minor, patch):
    return parse_version("%d.%d.%d" % (major, minor, patch))


_TESTS = {
    ">=": lambda a, b: a >= b, ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b, "<": lambda a, b: a < b,
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _comparator(text, whole):
    """The (op, Version) tests one comparator stands for, and whether it opts into the
    prereleases of its version's MAJOR.MINOR.PATCH."""
    match = _COMPARATOR.fullmatch(text)
    if match is None or re.fullmatch(r"[<>=!^~]+", text):
        raise ValueError("semver constraint %r: %r is not a comparator (OP VERSION, OP one "
                         "of %s)" % (whole, text, " ".join(OPERATORS)))
    op, version_text = match.group(1) or "=", match.group(2)
    version = parse_version(version_text)
    if version is None:
        raise ValueError("semver constraint %r: %r is not a version (MAJOR[.MINOR[.PATCH]]"
                         "[-PRERELEASE][+BUILD])" % (whole, version_text))
    if op == "==":
        op = "="
    if op == "^":
        upper = _plain(version.major + 1, 0, 0) if version.major else \
            _plain(0, version.minor + 1, 0)
        tests = ((">=", version), ("<", upper))
    elif op == "~":
        upper = _plain(version.major + 1, 0, 0) if version.parts == 1 else \
            _plain(version.major, version.minor + 1, 0)
        tests = ((">=", version), ("<", upper))
    else:
        tests = ((op, version),)
    opts_in = version.release if version.prerelease and op != "!=" else None
    return tests, opts_in


@dataclasses.dataclass(frozen=True)
class _Group:
    tests: tuple                        # (op, Version) pairs, all must hold
    prereleases: frozenset              # MAJOR.MINOR.PATCH whose prereleases it allows

    def allows(self, version):
        if version.prerelease and version.release not in self.prereleases:
            return False
        return all(_TESTS[op](version, bound) for op, bound in self.tests)


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A parsed `semver:` value; allows(tag) says whether a tag satisfies it."""
    text: str
    groups: tuple

    def allows(self, tag):
        """False for a tag that is not a version: a semver rule picks versions only."""
        version = tag if isinstance(tag, Version) else parse_version(tag)
        if version is None:
            return False
        return any(group.allows(version) for group in self.groups)

    def __str__(self):
        return self.text


def parse_constraint(text):
    """text (`>=1.2, <2 || ^3`) as a Constraint.

    :raises ValueError: naming the part that is not understood.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("semver constraint must be a non-empty string, like '>=1.2, <2'")
    groups = []
    for group_text in text.split("||"):
        if not group_text.strip():
            raise ValueError("semver constraint %r: empty alternative around ||" % text)
        tests, prereleases = [], set()
        for comparator_text in group_text.split(","):
            if not comparator_text.strip():
                raise ValueError("semver constraint %r: empty comparator around ," % text)
            more, opts_in = _comparator(comparator_text.strip(), text)
            tests.extend(more)
            if opts_in is not None:
                prereleases.add(opts_in)
        groups.append(_Group(tuple(tests), frozenset(prereleases)))
    return Constraint(text, tuple(groups))
