"""The registry of requests in flight on real Redis: what one replica's heartbeat publishes,
another replica reads (with the route template as matched by then); finished requests leave it;
a replica that stops heartbeating drops out on its own; an idle replica writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from engine.inflight.registry import ActiveRequest, InFlightRegistry, heartbeat_ttl_s
from engine.inflight.tracker import MAX_PUBLISHED, InFlight
from tests.waiting import wait_until


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    name = f"test:inflight:{uuid.uuid4().hex}"
    yield name
    keys = [k async for k in redis.scan_iter(match=f"{name}:*")]
    if keys:
        await redis.delete(*keys)


def _describe(request: dict[str, Any]) -> tuple[str, str, str]:
    return request["method"], request.get("route", "unmatched"), request["cid"]


def _tracker(registry: InFlightRegistry, replica: str) -> InFlight:
    # Flushed by hand here: the heartbeat's timing is not what these tests show.
    return InFlight(registry, replica=replica, node="node-1", describe=_describe, interval_s=1)


async def test_one_replica_publishes_what_another_reads(redis: Redis, prefix: str) -> None:
    registry = InFlightRegistry(redis, ttl_s=5, prefix=prefix)
    a, b = _tracker(registry, "api-a"), _tracker(registry, "api-b")
    slow = {"method": "POST", "cid": "slow-1"}
    quick = {"method": "GET", "cid": "quick-1"}
    a.begin(slow, 1000.0)
    b.begin(quick, 1001.0)
    # Matched after it began: the heartbeat reads the template as it is by then.
    slow["route"] = "/api/payments/purchase"
    await a.flush()
    await b.flush()
    reader = InFlightRegistry(redis, ttl_s=5, prefix=prefix)
    assert await reader.active() == [
        ActiveRequest("POST", "/api/payments/purchase", 1000.0, "slow-1", "api-a", "node-1"),
        ActiveRequest("GET", "unmatched", 1001.0, "quick-1", "api-b", "node-1"),
    ]
    shown = (await reader.report())[0]
    assert shown["replica"] == "api-a"
    assert isinstance(shown["elapsed_ms"], float)
    assert shown["elapsed_ms"] > 0

    a.end(slow)
    await a.flush()
    assert [r.correlation_id for r in await reader.active()] == ["quick-1"]
    await b.close()
    assert await reader.active() == []
    assert await redis.smembers(f"{prefix}:replicas") == set()


async def test_a_replica_that_stops_heartbeating_drops_out(redis: Redis, prefix: str) -> None:
    registry = InFlightRegistry(redis, ttl_s=0.3, prefix=prefix)
    dying = _tracker(registry, "api-dying")
    dying.begin({"method": "GET", "cid": "orphan"}, 1.0)
    await dying.flush()
    assert [r.replica for r in await registry.active()] == ["api-dying"]

    async def gone() -> bool:
        return await registry.active() == []

    await wait_until(gone, timeout_s=10, what="the dead replica's entries to expire")


async def test_an_idle_replica_writes_nothing(redis: Redis, prefix: str) -> None:
    registry = InFlightRegistry(redis, ttl_s=5, prefix=prefix)
    idle = _tracker(registry, "api-idle")
    await idle.flush()
    request = {"method": "GET", "cid": "short"}
    idle.begin(request, 1.0)
    idle.end(request)
    await idle.flush()
    assert [k async for k in redis.scan_iter(match=f"{prefix}:*")] == []


def test_entries_outlive_a_few_heartbeats() -> None:
    assert heartbeat_ttl_s(0.5) == 2.0
    assert heartbeat_ttl_s(1.0) == 4.0


async def test_a_flooded_replica_publishes_its_oldest_requests(redis: Redis, prefix: str) -> None:
    registry = InFlightRegistry(redis, ttl_s=5, prefix=prefix)
    flooded = _tracker(registry, "api-flooded")
    requests = [{"method": "GET", "cid": f"r{i}"} for i in range(MAX_PUBLISHED + 50)]
    for i, request in enumerate(reversed(requests)):
        flooded.begin(request, float(len(requests) - i))
    await flooded.flush()
    published = await registry.active()
    assert [r.correlation_id for r in published] == [f"r{i}" for i in range(MAX_PUBLISHED)]
