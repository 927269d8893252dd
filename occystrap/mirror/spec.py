"""Reading and checking a `sync` spec (YAML) into sync.model.Entry objects.

Every problem is a SpecError "<name>: entry N: <what>" (or "<name>: <what>" above the
entries), so a typo is reported before anything is copied.  Messages never repr a
user's value whole: a YAML alias bomb or a deeply nested list would make the message
itself the problem, so a value is shown by its type unless it is a short scalar.
"""
import re

import yaml

from ..compression import LEVELS
from ..errors import OccystrapError, SpecError
from ..filters import build_filter
from ..model.platforms import parse_platforms
from ..uri import parse_filter, parse_uri
from .model import DEFAULT_KEYS, ENTRY_KEYS, Entry
from .semver import parse_constraint

TOP_KEYS = ("sync", "defaults")
SOURCE_SCHEMES = ("registry", "ocidir", "dir", "oci-archive", "quay")
DESTINATION_SCHEMES = ("registry", "ocidir", "oci-archive", "dir")
COMPRESSIONS = tuple(sorted(LEVELS))


class _Problem(Exception):
    """A check's failure, before the caller adds "<name>: entry N: "."""


def _show(value):
    """value for a message: short scalars as typed, anything else by its kind."""
    if isinstance(value, bool):
        return "the boolean %s" % ("true" if value else "false")
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "the number %r (quote it to make it a string)" % value
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a %s" % type(value).__name__


def load_spec(path):
    """The entries of the spec file at path (named in messages as given)."""
    name = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise SpecError("%s: cannot read: %s" % (name, exc.strerror or exc)) from None
    try:
        document = yaml.safe_load(data)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = " at line %d" % (mark.line + 1) if mark is not None else ""
        what = exc.problem or exc.context or "unreadable"
        raise SpecError("%s: YAML syntax error%s: %s" % (name, where, what)) from None
    except yaml.YAMLError as exc:       # bytes that are not text (ReaderError)
        raise SpecError("%s: YAML error: %s" % (name, exc)) from None
    except RecursionError:
        raise SpecError("%s: YAML document is nested too deeply" % name) from None
    return parse_spec(document, name)


def parse_spec(document, name="spec"):
    """The entries of an already-loaded spec document (a dict, as from YAML)."""
    if not isinstance(document, dict):
        raise SpecError("%s: the spec must be a mapping with a sync: list, not %s"
                        % (name, "an empty document" if document is None else
                           _show(document)))
    for key in document:
        if key not in TOP_KEYS:
            raise SpecError("%s: unknown top-level key %s (accepted: %s)"
                            % (name, _show(key), ", ".join(TOP_KEYS)))
    if "sync" not in document:
        raise SpecError("%s: missing sync: (the list of entries)" % name)
    entries = document["sync"]
    if not isinstance(entries, list) or not entries:
        raise SpecError("%s: sync: must be a non-empty list of entries, not %s"
                        % (name, "an empty list" if entries == [] else _show(entries)))
    defaults = document.get("defaults")
    if defaults is None:
        defaults = {}
    try:
        defaults = _checked(defaults, DEFAULT_KEYS, "defaults")
    except _Problem as exc:
        raise SpecError("%s: defaults: %s" % (name, exc)) from None
    result = []
    for number, entry in enumerate(entries, 1):
        try:
            values = dict(defaults)
            values.update(_checked(entry, ENTRY_KEYS, "an entry"))
            for key in ("source", "destination"):
                if key not in values:
                    raise _Problem("missing %s" % key)
            result.append(Entry(number=number, **values))
        except _Problem as exc:
            raise SpecError("%s: entry %d: %s" % (name, number, exc)) from None
    return result


def _checked(block, allowed, what):
    """The Entry fields of one mapping (an entry or defaults), each value checked."""
    if not isinstance(block, dict):
        raise _Problem("%s must be a mapping, not %s" % (what, _show(block)))
    values = {}
    for key, value in block.items():
        if key not in allowed:
            raise _Problem("unknown key %s (accepted: %s)" % (_show(key), ", ".join(allowed)))
        values[key] = CHECKS[key](value)
    return values


def _string(key, value):
    if not isinstance(value, str):
        raise _Problem("%s must be a string, not %s" % (key, _show(value)))
    if not value.strip():
        raise _Problem("%s must not be empty" % key)
    return value


def _uri(key, value, schemes):
    value = _string(key, value)
    try:
        uri = parse_uri(value)
    except OccystrapError as exc:
        raise _Problem("%s: %s" % (key, exc)) from None
    if uri.scheme not in schemes:
        raise _Problem("%s scheme %s is not one of %s"
                       % (key, _show(uri.scheme), ", ".join(schemes)))
    return value


def _strings(key, value):
    """A list of strings; one string is a list of one.  null is no list (None)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise _Problem("%s must be a list of strings, not %s" % (key, _show(value)))
    for index, item in enumerate(value, 1):
        if not isinstance(item, str):
            raise _Problem("%s item %d must be a string, not %s" % (key, index, _show(item)))
    return value


def _tags(value):
    patterns = _strings("tags", value)
    if patterns is None:
        return None
    if not patterns:
        raise _Problem("tags must not be empty (leave it out, or null, for every tag)")
    compiled = []
    for index, pattern in enumerate(patterns, 1):
        try:
            compiled.append(re.compile(pattern))
        except (re.error, RecursionError, OverflowError) as exc:
            raise _Problem("tags item %d: bad regular expression %s: %s"
                           % (index, _show(pattern), exc)) from None
    return tuple(compiled)


def _semver(value):
    if value is None:
        return None
    value = _string("semver", value)
    try:
        return parse_constraint(value)
    except ValueError as exc:
        raise _Problem("semver: %s" % exc) from None


def _filters(value):
    specs = _strings("filters", value)
    if specs is None:
        return ()
    for index, spec in enumerate(specs, 1):
        try:
            parse_filter(spec)
            build_filter(spec)
        except (OccystrapError, ValueError) as exc:
            raise _Problem("filters item %d: %s" % (index, exc)) from None
    return tuple(specs)


def _platforms(value):
    if value is None:
        return None
    value = _string("platforms", value)
    try:
        parse_platforms(value)
    except OccystrapError as exc:
        raise _Problem("platforms: %s" % exc) from None
    return value


def _compression(value):
    if value is None:
        return None
    if value not in COMPRESSIONS:
        raise _Problem("compression must be %s, not %s"
                       % (" or ".join(COMPRESSIONS), _show(value)))
    return value


# key -> check: the value as the Entry field, or _Problem.  null in an optional key is
# "not set", and overrides a default (`tags: null` in an entry: every tag).
CHECKS = {
    "source": lambda value: _uri("source", value, SOURCE_SCHEMES),
    "destination": lambda value: _uri("destination", value, DESTINATION_SCHEMES),
    "tags": _tags,
    "semver": _semver,
    "filters": _filters,
    "platforms": _platforms,
    "compression": _compression,
}
assert set(CHECKS) == set(ENTRY_KEYS)
