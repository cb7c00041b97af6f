"""A fixed-window request counter in the cache, for public pages and forms that anyone can use."""

import logging
import math
import time

from django.core.cache import cache

logger = logging.getLogger(__name__)


def client_ip(request) -> str:
    # Behind a proxy, configure it to set REMOTE_ADDR (e.g. gunicorn --forwarded-allow-ips);
    # trusting X-Forwarded-For blindly would let anyone pick their own address.
    return request.META.get("REMOTE_ADDR", "unknown")


def hit(scope: str, key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one request; False once `limit` requests were made in the current window."""
    window = int(time.time() // window_seconds)
    cache_key = f"ratelimit:{scope}:{key}:{window}"
    try:
        if cache.add(cache_key, 1, timeout=window_seconds + 1):
            return True
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add() and incr()
            cache.add(cache_key, 1, timeout=window_seconds + 1)
            return True
    except Exception:  # the cache server is down (redis.ConnectionError, timeouts, …)
        # Fail open: while the cache is unreachable, clients can still book; the limit is only
        # a brake on abuse, and the bookings themselves are checked against the database.
        logger.warning("rate limit %s not counted: cache unavailable", scope, exc_info=True)
        return True
    return count <= limit


def seconds_left(window_seconds: int) -> int:
    """Until the current window ends and a refused client is counted afresh (for Retry-After)."""
    return max(1, math.ceil(window_seconds - time.time() % window_seconds))
