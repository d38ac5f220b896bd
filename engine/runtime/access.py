"""Builds what authentication runs on in one process: the key service with its cache, the
listener that clears that cache when another process changes a key, the rate limiter and the
guard that puts them together."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from redis.asyncio import Redis

from engine.auth.guard import AccessGuard
from engine.auth.invalidation import KeyChanges
from engine.auth.keys import ApiKeyService
from engine.config import Settings
from engine.db.database import Database
from engine.ratelimit.limiter import RateLimiter
from engine.ratelimit.limits import PROFILES

# How long a start waits to be subscribed to key changes; past it, the process serves anyway
# (the listener keeps trying, and the cache TTL bounds what it misses meanwhile).
_SUBSCRIBE_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class Access:
    keys: ApiKeyService
    guard: AccessGuard
    listener: asyncio.Task[None]

    async def close(self) -> None:
        self.listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.listener


def key_service(settings: Settings, db: Database, redis: Redis | None) -> ApiKeyService:
    """The key service of an operator command or a replica; with `redis`, its changes reach
    every replica at once."""
    return ApiKeyService(
        db,
        secret=settings.secret_bytes,
        cache_ttl_s=settings.api_key_cache_ttl_s,
        rotation_grace_s=settings.api_key_rotation_grace_s,
        changes=None if redis is None else KeyChanges(redis),
    )


async def open_access(settings: Settings, db: Database, redis: Redis) -> Access:
    """The key service and guard of one replica, subscribed to key changes."""
    keys = key_service(settings, db, redis)
    ready = asyncio.Event()
    listener = asyncio.get_running_loop().create_task(KeyChanges(redis).listen(keys.forget, ready))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ready.wait(), _SUBSCRIBE_WAIT_S)
    guard = AccessGuard(
        keys,
        RateLimiter(redis, timeout_s=settings.rate_limit_timeout_ms / 1000),
        PROFILES[settings.rate_limit_profile],
    )
    return Access(keys, guard, listener)
