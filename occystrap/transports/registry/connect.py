"""Build a RegistryClient from a registry:// URI and the global options.

URI query values override the globals, as in 0.4.17 (A.4).  The options each
direction accepts are declared here: 0.4.17's (A.4) plus ca_file and, for output,
compression_level.  Credentials may differ per side: --src-username/--src-password
and --dest-username/--dest-password override --username/--password (which 0.4.17
used for both) on their side.
"""
from ... import __version__
from ...compression import LEVELS
from ...model import MAX_PARALLEL
from ...model.platforms import platform_option
from ...transports.base import usable_cpus
from ...uri import boolean, choice, integer, text
from ..treesource import setting
from .auth import resolve_credentials
from .client import RegistryClient
from .reference import parse_reference

_COMMON = {"username": text, "password": text, "insecure": boolean, "ca_file": text,
           "max_workers": integer(1, MAX_PARALLEL)}
SOURCE_OPTIONS = dict(_COMMON, os=text, arch=text, variant=text, platform=platform_option)
SOURCE_ALIASES = {"architecture": "arch"}
# compression_level is checked against the compression (gzip and zstd differ) by the sink.
SINK_OPTIONS = dict(_COMMON, compression=choice(*LEVELS), compression_level=integer())


def connect(uri, options, side):
    """(Reference, RegistryClient) for a registry:// URI read ("src") or written ("dest")."""
    ref = parse_reference(uri.path)
    username, password = resolve_credentials(
        ref.host, options.get(side + "_username") or options.get("username"),
        options.get(side + "_password") or options.get("password"),
        uri_username=uri.options.get("username") or ref.username,
        uri_password=uri.options.get("password") or ref.password)
    insecure = bool(setting(uri, options, "insecure", default=False))
    ca_file = setting(uri, options, "ca_file")
    retries = options.get("retries", 3)
    workers = _workers(uri, options)

    def make(limiter=None, connections=max(8, workers * 2)):
        return RegistryClient(
            ref.api_host, insecure=insecure, ca_file=ca_file, username=username,
            password=password, retries=retries, rate_limit=options.get("rate_limit"),
            pool_size=connections, user_agent="occystrap/%s" % __version__,
            limiter=limiter)
    pool = options.get("clients")       # a ClientPool: many copies share one (sync)
    if pool is None:
        return ref, make()
    images = int(options.get("image_parallel") or 1)
    return ref, pool.get((ref.api_host, insecure, ca_file, username, password, retries),
                         lambda limiter: make(limiter, max(8, workers * images * 2)))


def _workers(uri, options):
    """Layer threads that may share the pool: max_workers or -j (0: one per CPU)."""
    return int(setting(uri, options, "max_workers", "parallel", default=4)) or usable_cpus()
