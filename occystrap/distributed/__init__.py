"""Scale-out on Celery with Redis (docs/distributed.md): `occystrap worker`, `sync
--broker`, and the state workers and proxies share in Redis (the layer cache, the
per-blob upload lock, the rate limit).

celery and redis come with the `distributed` extra; nothing here imports them until a
command needs them, so a plain install still runs everything else, and a command that
needs them says what to install.
"""
from ..errors import OptionError

INSTALL_HINT = "pip install 'occystrap[distributed]'"
KEY_PREFIX = "occystrap:"            # every key occystrap writes in Redis starts so


def need(module):
    """Import celery or redis, or say in one line what to install."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OptionError("%s is not installed; it comes with the distributed extra: %s"
                         % (module, INSTALL_HINT)) from None


def is_redis_url(value):
    return isinstance(value, str) and value.split("://", 1)[0].lower() in ("redis", "rediss")


def redis_client(url):
    """A redis.Redis for url (redis://HOST:PORT/DB or rediss:// for TLS)."""
    redis = need("redis")
    try:
        return redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10,
                                    health_check_interval=30)
    except ValueError as exc:
        raise OptionError("bad Redis URL %s: %s" % (url, exc)) from None
