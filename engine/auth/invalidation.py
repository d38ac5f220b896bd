"""Telling every replica that a key changed: a Redis pub/sub channel each replica listens on,
clearing its cache of authentication results when a message arrives.

Delivery is best effort (pub/sub keeps nothing for a listener that is reconnecting), so the
cache's TTL stays the backstop: a listener that reconnects clears its cache, and an entry
missed anyway lives at most `api_key_cache_ttl_s`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("paygrid.auth")

CHANNEL = "paygrid:api-keys:changed"
_RECONNECT_S = 0.5


class KeyChanges:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def publish(self, key_id: UUID) -> None:
        """Announce that `key_id` changed (revoked, rotated). A lost announcement is covered
        by the caches' TTL, so a Redis error is logged, not raised: the change is durable."""
        try:
            await self._redis.publish(CHANNEL, str(key_id))
        except (RedisError, OSError) as exc:
            log.warning("could not announce a change of key %s: %s", key_id, exc)

    async def listen(self, on_change: Callable[[], None], ready: asyncio.Event) -> None:
        """Call `on_change` for every announcement, forever; `ready` is set once subscribed.
        Reconnects after a Redis error, clearing (through `on_change`) what it may have missed."""
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    on_change()
                    ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            on_change()
            except (RedisError, OSError) as exc:
                log.warning("key-change listener lost Redis: %s; reconnecting", exc)
                await asyncio.sleep(_RECONNECT_S)
