"""The cache backend: Django's Redis cache, with its Redis clients made once and shared."""

import threading

import pytest
from django.conf import settings
from django.core.cache import cache

needs_redis = pytest.mark.skipif(not settings.REDIS_URL, reason="the Redis backend is used only with REDIS_URL")


@needs_redis
def test_every_call_of_every_thread_uses_the_one_client_of_the_pool():
    backend = cache._cache
    seen = [backend.get_client(write=True), backend.get_client()]

    def from_another_thread() -> None:
        seen.append(backend.get_client(write=True))

    thread = threading.Thread(target=from_another_thread)
    thread.start()
    thread.join()

    assert len({id(client) for client in seen}) == 1
    assert seen[0].connection_pool is backend._get_connection_pool(True)


@needs_redis
def test_the_cache_works_as_djangos_own(settings):
    assert settings.CACHES["default"]["BACKEND"] == "tsp.redis_cache.RedisCache"
    cache.clear()
    cache.set("page", {"days": ["2026-12-08"]}, 30)
    assert cache.get("page") == {"days": ["2026-12-08"]}
    assert cache.add("counter", 1, 30) and not cache.add("counter", 1, 30)
    assert cache.incr("counter") == 2
    with pytest.raises(ValueError):
        cache.incr("missing")
    cache.set_many({"a": 1, "b": 2}, 30)
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    cache.delete("page")
    assert cache.get("page") is None
