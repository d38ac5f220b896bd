"""`engine/metrics/traffic.py` and `MetricsStore.traffic`: HTTP series folded per minute over
routes and methods, kept for the hour the console charts, read back as rate, 5xx share and
latency quantiles at the histogram's bucket bounds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from engine.metrics.catalogue import HTTP_DURATION, HTTP_REQUESTS, PAYMENTS
from engine.metrics.recorder import Registry
from engine.metrics.store import MetricsStore
from engine.metrics.traffic import MINUTES, fold
from engine.shared_state import connect_redis

T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)


@pytest.fixture
async def store(infra: dict[str, str]) -> AsyncIterator[MetricsStore]:
    redis: Redis = connect_redis(infra["redis_url"])
    prefix = f"test:traffic:{uuid.uuid4().hex}"
    yield MetricsStore(redis, prefix=prefix, gauge_ttl_s=1)
    keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def _sample(latencies: list[float], *, route: str = "/api/x", status: str = "200") -> Registry:
    registry = Registry()
    for latency in latencies:
        registry.inc(HTTP_REQUESTS, (route, "GET", status))
        registry.observe(HTTP_DURATION, (route, "GET"), latency)
    registry.inc(PAYMENTS, ("purchase", "succeeded", "USD"))
    return registry


def test_fold_sums_routes_and_keeps_only_http() -> None:
    registry = _sample([0.004, 0.03])
    registry.inc(HTTP_REQUESTS, ("/api/y", "POST", "503"))
    registry.observe(HTTP_DURATION, ("/api/y", "POST"), 0.3)
    folded = fold(registry.take().counters)
    assert folded["requests"] == 3
    assert folded["errors"] == 1
    assert folded["duration_count"] == 3
    assert folded["duration_sum"] == pytest.approx(0.334)
    assert folded["le:0.005"] == 1
    assert folded["le:0.05"] == 2
    assert folded["le:+Inf"] == 3
    assert not any("payments" in k for k in folded)


async def test_the_last_hour_minute_by_minute(store: MetricsStore) -> None:
    # Two processes in the first minute, one in the third; nothing in the second.
    await store.push("a", _sample([0.004] * 18 + [0.3] * 2).take(), now=T0 + 5)
    await store.push("b", _sample([0.004] * 10, status="500").take(), now=T0 + 50)
    await store.push("a", _sample([0.04] * 6).take(), now=T0 + 125)
    minutes = await store.traffic(now=T0 + 150)
    assert len(minutes) == MINUTES
    first, second, third = minutes[-3:]
    assert first.start_s == T0
    assert first.rate_per_s == pytest.approx(30 / 60)
    assert first.error_ratio == pytest.approx(10 / 30)
    assert (first.p50_s, first.p95_s) == (0.005, 0.5)
    assert first.mean_s == pytest.approx((28 * 0.004 + 0.6) / 30)
    assert (second.rate_per_s, second.p50_s, second.mean_s) == (0.0, None, None)
    # The current minute's rate is over the 30 s it has run.
    assert third.rate_per_s == pytest.approx(6 / 30)
    assert third.p95_s == 0.05
    later = await store.traffic(now=T0 + 60 * MINUTES + 30)
    assert later[0].start_s == T0 + 60
    assert all(m.rate_per_s == 0 for m in later[:1])
