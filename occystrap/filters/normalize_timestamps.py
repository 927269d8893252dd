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
        value = self.option("timestamp", "ts", default="0", raw=True)
        try:
            self.timestamp = int(value)
        except ValueError:
            raise URIParseError("normalize-timestamps: timestamp must be an integer: %s"
                                % value) from None

    def stage(self, ref):
        return rewrite.TarRewriter(mtime=self.timestamp)
