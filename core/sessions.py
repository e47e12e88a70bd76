"""Sessions read from the cache and kept in the database: Django's `cached_db` engine with the
cache failures of `core.cache` tolerated (SESSION_ENGINE when Redis is configured).

Every signed-in page reads its session; from the database that was a query, about 1 ms of a
page's time (issue 11 §1); from Redis it is one round trip. The database stays the record: a
session is written there first, then to the cache, and a cache miss reads it back from there.

With Redis down a session is read from and written to the database only, so signing in and
every page keep working. A session's cache entry lives at most CACHE_SECONDS, whatever the
session's own age: a sign-out while Redis was unreachable (its entry could not be deleted) is
in force everywhere once that entry expires, even if Redis kept its data.
"""

from django.contrib.sessions.backends import cached_db

from core.cache import cache_delete, cache_get, cache_set

CACHE_SECONDS = 300


class _TolerantCache:
    """The cache as `cached_db` uses it (get, set, delete, `in`), through `core.cache`."""

    def get(self, key: str):
        return cache_get(key)

    def set(self, key: str, value, timeout: int) -> None:
        cache_set(key, value, min(timeout, CACHE_SECONDS))

    def delete(self, key: str) -> None:
        cache_delete(key)

    def __contains__(self, key: str) -> bool:
        return cache_get(key) is not None


class SessionStore(cached_db.SessionStore):
    def __init__(self, session_key=None):
        super().__init__(session_key)
        self._cache = _TolerantCache()
