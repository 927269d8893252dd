"""normalize-timestamps: every member's mtime becomes `ts` (default 0); PAX atime, ctime
and mtime records are dropped (0.4.17 B.11), everything else is kept byte for byte."""
from .._native import rewrite
from ..uri import integer
from .base import Filter


class NormalizeTimestamps(Filter):
    name = "normalize-timestamps"
    # a signed 64-bit count of seconds: what a tar header (GNU base-256) and os.utime hold
    OPTIONS = {"timestamp": integer(-(1 << 63), (1 << 63) - 1)}
    OPTION_ALIASES = {"ts": "timestamp"}
    changes_content = True

    def __init__(self, spec):
        super().__init__(spec)
        self.timestamp = self.option("timestamp", default=0)

    def stage(self, ref):
        return rewrite.TarRewriter(mtime=self.timestamp)
