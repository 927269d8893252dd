"""Reports about an image: `info` (metadata, no layer read) and `check` (validation,
an observer of a copy)."""
