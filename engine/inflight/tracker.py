"""One process's requests in flight, published to the shared registry by a heartbeat.

The request path only adds and removes a dict entry (its handle and start time); everything
else (what the request is, serializing, the Redis write) happens on the heartbeat, every
`interval_s` (at most a second), and only while something is or just was in flight: an idle
replica writes nothing. A request shorter than the interval may never be published, which is
the point: the registry shows what is slow enough to look at. Under a flood, a replica
publishes its `MAX_PUBLISHED` oldest requests: those are the ones to look at, and the heartbeat
stays a fraction of a millisecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from engine.inflight.registry import ActiveRequest, InFlightRegistry
from engine.shared_state import push_every

log = logging.getLogger("paygrid.inflight")

# What a request handle is, read at heartbeat time: (method, route, correlation id). Read late
# on purpose: the route template is known only once the router has matched the request.
Describe = Callable[[Any], tuple[str, str, str]]

MAX_PUBLISHED = 200


class InFlight:
    """Not thread-safe: begin and end from the event loop's thread."""

    def __init__(
        self,
        registry: InFlightRegistry,
        *,
        replica: str,
        node: str,
        describe: Describe,
        interval_s: float,
    ) -> None:
        self._registry = registry
        self._replica = replica
        self._node = node
        self._describe = describe
        self._interval_s = interval_s
        self._requests: dict[int, tuple[Any, float]] = {}
        self._published = False
        self._task: asyncio.Task[None] | None = None

    def begin(self, handle: Any, started_at: float) -> None:
        """`handle` (kept alive by the caller until `end`) started at `started_at`, epoch s."""
        self._requests[id(handle)] = (handle, started_at)

    def end(self, handle: Any) -> None:
        self._requests.pop(id(handle), None)

    def snapshot(self) -> list[ActiveRequest]:
        """What is in flight here now: the `MAX_PUBLISHED` oldest requests."""
        found = []
        oldest = heapq.nsmallest(MAX_PUBLISHED, self._requests.values(), key=lambda r: r[1])
        for handle, started_at in oldest:
            method, route, correlation_id = self._describe(handle)
            found.append(
                ActiveRequest(method, route, started_at, correlation_id, self._replica, self._node)
            )
        return found

    async def flush(self) -> None:
        """Publish the snapshot, unless nothing is in flight and nothing was last time."""
        current = self.snapshot()
        if not current and not self._published:
            return
        await self._registry.replace(self._replica, current)
        self._published = bool(current)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop the heartbeat and withdraw this replica's entries (best effort: they expire
        anyway)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._requests.clear()
        with contextlib.suppress(RedisError, OSError):
            await self.flush()

    async def _run(self) -> None:
        await push_every(
            self._interval_s, self.flush, log=log, failed="requests in flight not published"
        )
