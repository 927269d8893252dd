"""Scale-out on Celery with Redis (docs/distributed.md): `occystrap worker`, `sync
--broker`, and the state workers and proxies share in Redis (the layer cache, the
per-blob upload lock, the rate limit).

celery and redis come with the `distributed` extra; nothing here imports them until a
command needs them, so a plain install still runs everything else, and a command that
needs them says what to install.
"""
import urllib.parse

from ..errors import OptionError, OutputError
from ..uri import without_password

INSTALL_HINT = "pip install 'occystrap[distributed]'"
KEY_PREFIX = "occystrap:"            # every key occystrap writes in Redis starts so
RUN_TTL = 86400                      # seconds a run's keys outlive a sender that never
                                     # cleans up (--no-wait, a lost sender)


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
    """A redis.Redis for url (redis://[:PASSWORD@]HOST:PORT[/DB], or rediss:// for TLS):
    the one form both redis-py and Celery read the same way."""
    redis = need("redis")
    if not is_redis_url(url):
        raise OptionError("%s is not a Redis URL (redis://HOST:PORT/DB or rediss://...)"
                          % shown(str(url)))
    database = urllib.parse.urlsplit(url).path.strip("/")
    if database and not database.isdigit():
        raise OptionError("bad Redis URL %s: the database is a number, not %r"
                          % (shown(url), database))
    try:
        return redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10,
                                    health_check_interval=30)
    except ValueError as exc:
        reason = str(exc).replace(url, shown(url))
        raise OptionError("bad Redis URL %s: %s" % (shown(url), reason)) from None


def shown(url):
    """url without its password or query (it may hold one), for warnings and logs."""
    return without_password(url.split("?", 1)[0])


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
