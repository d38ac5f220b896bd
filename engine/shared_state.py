"""The Redis client every process opens once: shared, fast, loss-tolerant state; and the
loop that pushes a process's share of it (metrics, requests in flight) every few seconds.

Its connections come from a blocking pool: when all are busy a caller waits (up to
`wait_s`) for one to come back, instead of failing at once with "Too many connections" as
redis-py's default pool does under a burst.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError


def connect_redis(url: str, *, max_connections: int = 64, wait_s: float = 5.0) -> Redis:
    """A client on `url` with at most `max_connections` connections; it owns its pool, so
    `aclose()` closes them (a client merely given a pool leaves its connections open)."""
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait_s)
    return Redis.from_pool(pool)


async def push_every(
    interval_s: float, push: Callable[[], Awaitable[None]], *, log: logging.Logger, failed: str
) -> None:
    """Await `push` every `interval_s`, until cancelled. Redis being unreachable is logged
    once (`failed`, with the error's type) until a push succeeds again, not once per try."""
    down = False
    while True:
        await asyncio.sleep(interval_s)
        try:
            await push()
        except (RedisError, OSError) as exc:
            if not down:
                log.warning("%s (%s)", failed, type(exc).__name__)
            down = True
        else:
            down = False
