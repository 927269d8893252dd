"""inspect: append one JSON line per image describing its layers (0.4.17 B.12).

Layers are listed newest first, paired with history by manifest position, so the
record is the same on every run (0.4.17 used arrival order, E.2 #8).
"""
import datetime
import json

from ..errors import OutputError, URIParseError
from ..jsonparse import parse_json
from ..transports.outpath import check_appendable
from ..uri import text
from .base import Filter, Observer


def _unix(created):
    try:
        return int(datetime.datetime.fromisoformat(created.replace("Z", "+00:00")[:26] if "."
                                                   not in created else _trim(created)).timestamp())
    except (ValueError, AttributeError, TypeError):
        return 0


def _trim(created):
    # fromisoformat on 3.9/3.10 takes at most 6 fractional digits and no 'Z'.
    head, _, frac = created.replace("Z", "+00:00").partition(".")
    digits = ""
    for i, ch in enumerate(frac):
        if not ch.isdigit():
            return "%s.%s%s" % (head, digits[:6].ljust(6, "0"), frac[i:])
        digits += ch
    return "%s.%s" % (head, digits[:6].ljust(6, "0"))


class Inspect(Filter):
    name = "inspect"
    OPTIONS = {"file": text}

    def __init__(self, spec):
        super().__init__(spec)
        self.path = self.option("file")
        if not self.path:
            raise URIParseError("inspect filter requires file option")
        self.path = str(self.path)
        # Filters are built before the output is opened: an unwritable file fails the
        # run before anything is written, not after the image is complete.
        check_appendable(self.path, "inspect")
        self.local_path = self.path

    def stage(self, ref):
        observer = Observer()
        self.stages[ref.index] = (ref, observer)
        return observer

    def finish(self, source, results, out):
        history = []
        try:
            config = parse_json(source.config_bytes())
            history = [h for h in config.get("history", []) if not h.get("empty_layer")]
        except (ValueError, AttributeError):
            pass
        layers = []
        for index in sorted(self.stages):
            ref, observer = self.stages[index]
            entry = history[index] if index < len(history) else {}
            layers.append({"Comment": entry.get("comment", ""),
                           "Created": _unix(entry.get("created", "")),
                           "CreatedBy": entry.get("created_by", ""),
                           "Id": "sha256:" + self.layer_name(ref, results),
                           "Size": observer.bytes, "Tags": None})
        layers.reverse()
        if layers:
            layers[0]["Tags"] = ["%s:%s" % (source.image, source.tag)]
        record = {"layers": layers, "name": "%s:%s" % (source.image, source.tag)}
        if source.registry:     # new key: name and Tags keep 0.4.17's repository path
            record["registry"] = source.registry
        try:
            with open(self.path, "a") as fileobj:
                fileobj.write(json.dumps(record, sort_keys=True) + "\n")
        except OSError as exc:
            raise OutputError("inspect: cannot write %s: %s" % (self.path, exc.strerror)) from None
