"""Which span caused the events of a correlation id, so that a webhook attempt — its own trace,
sent long after the request answered — links back to the request.

The ledger shard notes each traced command's span under its correlation id (the events it
writes carry that id); the webhook dispatcher looks the id up when it sends one of those events.
Kept in Redis (`paygrid:trace:origin:<correlation id>`, expiring after `ttl_s`, which covers the
default retry schedule) rather than on the event row: the link is loss-tolerant, and the events
table has no column for it that receivers do not see. A client that reuses a correlation id
links its webhooks to its latest request.

Notes made during one turn of the event loop go out together in one pipelined round trip,
scheduled at once: long before the command's transaction commits and its delivery is claimed.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("paygrid.tracing")

_ORIGIN = "paygrid:trace:origin:"
DEFAULT_TTL_S = 900


class TraceOrigins:
    def __init__(self, redis: Redis, *, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._pending: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def note(self, correlation_id: str, traceparent: str) -> None:
        """Record that `traceparent`'s span caused the events of `correlation_id`."""
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending[correlation_id] = traceparent

    async def find(self, correlation_id: str) -> str | None:
        """The traceparent noted for `correlation_id`, if any (None when Redis is down)."""
        try:
            raw = await self._redis.get(_ORIGIN + correlation_id)
        except RedisError:
            return None
        return raw.decode() if isinstance(raw, bytes) else raw

    def _flush(self) -> None:
        notes, self._pending = self._pending, {}
        task = asyncio.get_running_loop().create_task(self._write(notes))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, notes: dict[str, str]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for correlation_id, traceparent in notes.items():
                    pipe.set(_ORIGIN + correlation_id, traceparent, ex=self._ttl_s)
                await pipe.execute()
        except RedisError as exc:  # the link is lost, nothing else
            log.debug("trace origins not written: %s", type(exc).__name__)
