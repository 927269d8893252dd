"""Build a RegistryClient from a registry:// URI and the global options.

URI query values override the globals, as in 0.4.17 (A.4): os, arch/architecture,
variant, username, password, insecure, ca_file, compression.
"""
from ... import __version__
from .auth import resolve_credentials
from .client import RegistryClient
from .reference import parse_reference


def setting(uri, options, *names, default=None):
    """The first of names set in the URI query, else in the global options."""
    for name in names:
        if uri.options.get(name) not in (None, ""):
            return uri.options[name]
    for name in names:
        if options.get(name) not in (None, ""):
            return options[name]
    return default


def connect(uri, options):
    """(Reference, RegistryClient) for a registry:// URI."""
    ref = parse_reference(uri.path)
    username, password = resolve_credentials(
        ref.host, options.get("username"), options.get("password"),
        uri_username=_text(uri.options.get("username")) or ref.username,
        uri_password=_text(uri.options.get("password")) or ref.password)
    client = RegistryClient(
        ref.api_host, insecure=bool(setting(uri, options, "insecure", default=False)),
        ca_file=setting(uri, options, "ca_file"), username=username, password=password,
        retries=options.get("retries", 3), rate_limit=options.get("rate_limit"),
        pool_size=max(8, int(setting(uri, options, "max_workers", "parallel", default=4)) * 2),
        user_agent="occystrap/%s" % __version__)
    return ref, client


def _text(value):
    # Query values are type-coerced (A.4): ?password=1234 arrives as an int.
    return None if value is None else str(value)
