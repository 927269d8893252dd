"""normalize-timestamps: member mtimes become `ts` (mode=set, 0.4.17's) or only those
later than `ts` do (mode=clamp, as BuildKit, umoci and `regctl --time after=`); PAX
atime, ctime and mtime records go with them (0.4.17 B.11), everything else is kept byte
for byte.  `ts` defaults to $SOURCE_DATE_EPOCH (reproducible-builds.org), else 0.
config=true also dates the config and its history at ts; skip=N leaves the first N
(base) layers untouched, so their blobs keep their digests."""
import datetime
import os

from .._native import rewrite
from ..errors import URIParseError
from ..uri import boolean, choice, integer
from .base import Filter

# a signed 64-bit count of seconds: what a tar header (GNU base-256) and os.utime hold
SECONDS = integer(-(1 << 63), (1 << 63) - 1)


class NormalizeTimestamps(Filter):
    name = "normalize-timestamps"
    OPTIONS = {"timestamp": SECONDS, "mode": choice("set", "clamp"), "config": boolean,
               "skip": integer(0)}
    OPTION_ALIASES = {"ts": "timestamp"}
    changes_content = True

    def __init__(self, spec):
        super().__init__(spec)
        self.timestamp = self.option("timestamp", default=_source_date_epoch())
        self.clamp = self.option("mode", default="set") == "clamp"
        self.config = self.option("config", default=False)
        self.skip = self.option("skip", default=0)

    @property
    def cache_token(self):
        """The spec with the ts it resolved to ($SOURCE_DATE_EPOCH changes the layers):
        the same whether ts was typed or came from the environment, so a worker given
        the portable spec keys the cache and the provenance as the sender would."""
        return self.portable_spec

    @property
    def portable_spec(self):
        """With ts written out: a worker's $SOURCE_DATE_EPOCH is not the sender's."""
        if "timestamp" in self.values:
            return self.spec.text
        text = self.spec.text.rstrip(":")
        return "%s%sts=%d" % (text, "," if ":" in text else ":", self.timestamp)

    def applies_to(self, ref):
        return ref.index >= self.skip

    def stage(self, ref):
        return rewrite.TarRewriter(mtime=self.timestamp, clamp=self.clamp)

    def edit_config(self, config):
        """config=true: the config's and every history entry's `created` become ts
        (mode=clamp: only those later than ts; RFC 3339, UTC)."""
        if not self.config:
            return
        stamp = _rfc3339(self.timestamp)
        entries = [config] + [h for h in config.get("history") or () if isinstance(h, dict)]
        for entry in entries:
            if self.clamp and "created" in entry and not _later(entry["created"], self.timestamp):
                continue
            entry["created"] = stamp


def _source_date_epoch():
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    try:
        return SECONDS(value)
    except ValueError as exc:
        raise URIParseError("SOURCE_DATE_EPOCH %s" % exc) from None


def _rfc3339(seconds):
    try:
        when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise URIParseError("normalize-timestamps: ts=%d is not a date config=true can "
                            "write" % seconds) from None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _later(created, seconds):
    """Whether an RFC 3339 `created` is after ts (an unreadable one is replaced)."""
    try:
        when = datetime.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return when.timestamp() > seconds
    except ValueError:
        return True
