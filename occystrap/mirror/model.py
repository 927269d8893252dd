"""What `occystrap sync` passes between its parts: a spec's entries, and the jobs
(one image each) they resolve to.  No I/O."""
import dataclasses
import re
from typing import Optional

ENTRY_KEYS = ("source", "destination", "tags", "semver", "filters", "platforms",
              "compression")
DEFAULT_KEYS = ENTRY_KEYS[2:]           # what a `defaults:` block may supply


@dataclasses.dataclass(frozen=True)
class Entry:
    """One `sync:` entry, checked, with the defaults applied."""
    number: int                         # 1-based, for messages: "entry N"
    source: str                         # a URI as for `process` (or quay://ORG[/GLOB[:TAG]])
    destination: str
    tags: Optional[tuple] = None        # compiled regexes; None: every tag
    semver: Optional[object] = None     # a sync.semver.Constraint; None: no constraint
    filters: tuple = ()                 # `-f` specs, as typed
    platforms: Optional[str] = None     # as --platform
    compression: Optional[str] = None   # gzip / zstd; None: keep the source's

    def takes(self, tag):
        """Whether tag passes the entry's rules: any regex matches the whole name, and
        the semver constraint (when given) allows it."""
        if self.tags is not None and not any(rx.fullmatch(tag) for rx in self.tags):
            return False
        return self.semver is None or self.semver.allows(tag)


@dataclasses.dataclass(frozen=True)
class Job:
    """One image to copy: source and destination URIs (as for `process`), and the
    entry whose rules chose it."""
    source: str
    destination: str
    entry: Entry


def compile_tags(patterns):
    """The regexes of a `tags:` list; re.error names the bad one."""
    return tuple(re.compile(pattern) for pattern in patterns)
