"""The Redis client every process opens once: shared, fast, loss-tolerant state.

Its connections come from a blocking pool: when all are busy a caller waits (up to
`wait_s`) for one to come back, instead of failing at once with "Too many connections" as
redis-py's default pool does under a burst.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis


def connect_redis(url: str, *, max_connections: int = 64, wait_s: float = 5.0) -> Redis:
    """A client on `url` with at most `max_connections` connections; it owns its pool, so
    `aclose()` closes them (a client merely given a pool leaves its connections open)."""
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait_s)
    return Redis.from_pool(pool)
