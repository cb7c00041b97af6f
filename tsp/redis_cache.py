"""Django's Redis cache backend, with one Redis client per connection pool instead of one per call.

Django's backend makes a new `redis.Redis` for every cache call, and making one sets up its table
of some 170 response callbacks: about 55 µs of CPU, more than a GET itself takes (about 30 µs).
A month page served from the cache makes five cache calls (the rate limit's counter, the version,
the value), a booking a few more. A client holds no connection of its own (each command takes one
from the pool and gives it back) and may be shared between threads, so one per pool serves them all.
"""

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}  # id of a connection pool (kept for the life of the process) -> its client

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            # Two threads may both get here: either client is as good, and one is kept.
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
