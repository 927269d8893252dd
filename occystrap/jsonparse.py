"""The one parser of JSON that comes from outside: tarballs, directories, registries,
Docker daemons and the clients of the proxy (RFC 8259).

json.loads recurses once per nesting level, so 100 000 `[` end in a RecursionError
(a crash, not a ValueError), and json.dumps of a document nested near the limit can
fail later in another thread; it also takes NaN and Infinity, which are not JSON.
parse_json refuses all of these with a ValueError, so every caller's `except
ValueError` turns them into its own one-line error naming the document.
"""
import json

# Image manifests, indexes and configs nest 4 or 5 levels deep; 100 leaves room for
# any label or annotation tree while keeping every later json.dumps far from the limit.
MAX_DEPTH = 100


class JSONDocumentError(ValueError):
    """The bytes are not a JSON document occystrap accepts."""


def _refuse_constant(name):
    raise JSONDocumentError("%s is not a JSON value" % name)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def parse_json(data):
    """The value of the JSON document data (bytes or str).

    :raises ValueError: not JSON (json.JSONDecodeError, UnicodeDecodeError), NaN or
        Infinity, or nested more than MAX_DEPTH levels (JSONDocumentError).
    """
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONDocumentError("nested more than %d levels deep" % MAX_DEPTH) from None
    _check_depth(value)
    return value


def parse_json_prefix(text, start=0):
    """(value, end) of the JSON document at text[start:] (a str), for JSON-lines and
    concatenated streams (json.JSONDecoder.raw_decode with parse_json's rules).

    :raises ValueError: as parse_json; also when the document is incomplete.
    """
    try:
        value, end = _DECODER.raw_decode(text, start)
    except RecursionError:
        raise JSONDocumentError("nested more than %d levels deep" % MAX_DEPTH) from None
    _check_depth(value)
    return value, end


def _check_depth(value):
    """Walk the containers without recursion; refuse more than MAX_DEPTH levels."""
    pending = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > MAX_DEPTH:
            raise JSONDocumentError("nested more than %d levels deep" % MAX_DEPTH)
        pending.extend((child, depth + 1) for child in children
                       if isinstance(child, (dict, list)))
