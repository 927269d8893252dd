"""Every URI scheme in one table: the transport subpackage that implements it, whether
the rest of its URI is a filesystem path, and the other spellings 0.4.17 accepted.
uri.py parses with it, transports/ imports by it, help texts list from it."""

# scheme -> (subpackage of occystrap.transports, the URI names a path)
SCHEMES = {
    "tar": ("tarball", True),
    "dir": ("directory", True),
    "oci": ("ocibundle", True),
    "mounts": ("mounts", True),
    "ocidir": ("ocidir", True),
    "oci-archive": ("ocidir", True),
    "registry": ("registry", False),
    "docker": ("docker", False),
    "dockerpush": ("dockerpush", False),
}
ALIASES = {"file": "tar", "directory": "dir"}

MODULES = {scheme: module for scheme, (module, _path) in SCHEMES.items()}
PATH_SCHEMES = frozenset(scheme for scheme, (_module, path) in SCHEMES.items() if path)
