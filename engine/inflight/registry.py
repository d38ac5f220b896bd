"""The shared registry of requests in flight, in Redis: one hash per API replica, replaced by
that replica's heartbeat and expiring a few heartbeats after the replica stops (it died, or
its node did), so a dead replica's requests leave the list on their own. A set names the
replicas that published; readers drop the names whose hash is gone.

Loss-tolerant: losing Redis empties the list until the next heartbeat, and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.errors import UpstreamError


@dataclass(frozen=True, slots=True)
class ActiveRequest:
    """A request being answered: by which replica, on which node, since when (epoch seconds
    of the replica's clock)."""

    method: str
    route: str
    started_at: float
    correlation_id: str
    replica: str
    node: str

    def public(self, *, now: float) -> dict[str, object]:
        """The API shape; `elapsed_ms` as of `now` (never negative across skewed clocks)."""
        return {
            "method": self.method,
            "route": self.route,
            "started_at": self.started_at,
            "elapsed_ms": round(max(0.0, now - self.started_at) * 1000, 1),
            "correlation_id": self.correlation_id,
            "replica": self.replica,
            "node": self.node,
        }


# A replica's entries outlive a few missed heartbeats (a busy event loop), not a dead replica.
_TTL_INTERVALS = 4
_MIN_TTL_S = 2.0


def heartbeat_ttl_s(interval_s: float) -> float:
    """How long a replica's published requests live without a heartbeat."""
    return max(_MIN_TTL_S, _TTL_INTERVALS * interval_s)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class InFlightRegistry:
    def __init__(self, redis: Redis, *, ttl_s: float, prefix: str = "paygrid:inflight") -> None:
        self._redis = redis
        self._replicas = f"{prefix}:replicas"
        self._hash = f"{prefix}:replica:"
        self._ttl_ms = max(1, int(ttl_s * 1000))

    async def replace(self, replica: str, requests: Sequence[ActiveRequest]) -> None:
        """Make `requests` all that `replica` has in flight, for the next `ttl_s`. One round
        trip, atomic: a reader never sees the replica's hash half written."""
        key = f"{self._hash}{replica}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(key)
        if requests:
            pipe.hset(key, mapping={str(i): orjson.dumps(r) for i, r in enumerate(requests)})
            pipe.pexpire(key, self._ttl_ms)
            pipe.sadd(self._replicas, replica)
        await pipe.execute()

    async def active(self) -> list[ActiveRequest]:
        """Every replica's requests in flight as last published, oldest first; a 503 when
        Redis does not answer."""
        try:
            return await self._active()
        except (RedisError, OSError) as exc:
            raise UpstreamError(
                "the registry of requests in flight (Redis) is unavailable",
                code="shared_state_unavailable",
            ) from exc

    async def _active(self) -> list[ActiveRequest]:
        replicas = sorted(_text(r) for r in await self._redis.smembers(self._replicas))
        pipe = self._redis.pipeline(transaction=False)
        for replica in replicas:
            pipe.hvals(f"{self._hash}{replica}")
        found: list[ActiveRequest] = []
        gone = []
        for replica, values in zip(replicas, await pipe.execute(), strict=True):
            if not values:
                gone.append(replica)
            found.extend(ActiveRequest(**orjson.loads(v)) for v in values)
        if gone:
            await self._redis.srem(self._replicas, *gone)
        return sorted(found, key=lambda r: (r.started_at, r.correlation_id))

    async def report(self) -> list[dict[str, object]]:
        """`active()` in the API's shape, elapsed as of now."""
        found = await self.active()
        now = time.time()
        return [r.public(now=now) for r in found]
