"""The cache (Redis in a deployment) as what it is in lojix: a shortcut, never a dependency.

With Redis down Django's Redis cache raises on every call, which would make every page that
reads the cache a 500. Through these functions a failed read is a miss, a failed write or
delete is skipped, and each failure is logged as a warning; the caller decides what a missing
answer means (`cache_add` says None). Pages and the API keep working through a Redis outage,
as sign-in does (core.signin) and the outbox does for tasks (core.outbox).
"""

import logging

from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def cache_get(key: str, default=None):
    """The cached value of `key`, or `default` when it is absent or the cache is down."""
    try:
        return cache.get(key, default)
    except RedisError as error:
        _warn("get", key, error)
        return default


def cache_set(key: str, value, timeout: int) -> None:
    """Cache `value` under `key` for `timeout` seconds; skipped when the cache is down."""
    try:
        cache.set(key, value, timeout)
    except RedisError as error:
        _warn("set", key, error)


def cache_add(key: str, value, timeout: int) -> bool | None:
    """Cache `value` under `key` unless the key is there: True when this call added it, False
    when it was there, None when the cache is down (the caller cannot tell)."""
    try:
        return cache.add(key, value, timeout)
    except RedisError as error:
        _warn("add", key, error)
        return None


def cache_delete(key: str) -> None:
    """Delete `key`; skipped when the cache is down (Redis comes back empty, or the entry
    expires on its own)."""
    try:
        cache.delete(key)
    except RedisError as error:
        _warn("delete", key, error)


def _warn(operation: str, key: str, error: Exception) -> None:
    logger.warning(
        "cache unavailable; went on without it",
        extra={"operation": operation, "key": key, "error": type(error).__name__},
    )
