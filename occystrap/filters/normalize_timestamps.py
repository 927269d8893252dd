"""normalize-timestamps: every member's mtime becomes `ts` (default 0); PAX atime, ctime
and mtime records are dropped (0.4.17 B.11), everything else is kept byte for byte."""
from ..errors import URIParseError
from .._native import rewrite
from .base import Filter


class NormalizeTimestamps(Filter):
    name = "normalize-timestamps"
    changes_content = True

    def __init__(self, spec):
        super().__init__(spec)
        value = self.option("timestamp", "ts", default=0)
        if isinstance(value, bool) or not isinstance(value, int):
            raise URIParseError("normalize-timestamps: timestamp must be an integer: %s" % value)
        self.timestamp = value

    def stage(self, ref):
        return rewrite.TarRewriter(mtime=self.timestamp)
