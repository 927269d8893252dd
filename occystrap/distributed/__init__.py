"""Scale-out on Celery with Redis (docs/distributed.md): `occystrap worker`, `sync
--broker`, and the state workers and proxies share in Redis (the layer cache, the
per-blob upload lock, the rate limit).

celery and redis come with the `distributed` extra; nothing here imports them until a
command needs them, so a plain install still runs everything else, and a command that
needs them says what to install.
"""
from ..errors import OptionError, OutputError

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


def shown(url):
    """url without its password, for warnings and logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return "%s%s%s:***@%s" % (scheme, sep, userinfo.split(":", 1)[0], host)


def reachable(url):
    """redis_client(url) once Redis answers: a broker that is down is one error line
    here, not Celery's endless reconnecting."""
    redis = need("redis")
    client = redis_client(url)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise OutputError("cannot reach the broker %s: %s" % (shown(url), exc)) from None
    return client
