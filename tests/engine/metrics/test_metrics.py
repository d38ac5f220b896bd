"""Metrics from the registry to the exposition: two processes' counters add up in Redis,
histograms keep cumulative buckets, gauges of a process that stops publishing drop out, a push
that fails is kept for the next one, and the output parses as Prometheus text."""

from __future__ import annotations

import timeit
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from engine.db.database import Database
from engine.health.signals import http_signals
from engine.metrics.catalogue import (
    CATALOGUE,
    DB_POOL_IN_USE,
    HTTP_DURATION,
    HTTP_REQUESTS,
    PAYMENTS,
)
from engine.metrics.exposition import render
from engine.metrics.publisher import Publisher
from engine.metrics.reading import quantile
from engine.metrics.recorder import Registry
from engine.metrics.routes import route_stats
from engine.metrics.service import MetricsService
from engine.metrics.store import MetricsStore
from engine.queueing.service import QueueService
from engine.scheduler.queue import JOBS
from engine.shared_state import connect_redis
from engine.webhooks.queue import DELIVERIES
from tests.tcp_proxy import CuttableProxy, proxy_for_dsn, through_proxy
from tests.waiting import wait_until


@pytest.fixture
async def redis(infra: dict[str, str]) -> AsyncIterator[Redis]:
    client = connect_redis(infra["redis_url"])
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis: Redis) -> AsyncIterator[MetricsStore]:
    prefix = f"test:metrics:{uuid.uuid4().hex}"
    yield MetricsStore(redis, prefix=prefix, gauge_ttl_s=0.5)
    keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_two_processes_add_up_and_render_as_prometheus_text(store: MetricsStore) -> None:
    api_a, api_b = Registry(), Registry()
    for registry, seconds in ((api_a, 0.03), (api_b, 0.3)):
        registry.inc(HTTP_REQUESTS, ("/api/payments/purchase", "POST", "200"))
        registry.observe(HTTP_DURATION, ("/api/payments/purchase", "POST"), seconds)
        registry.inc(PAYMENTS, ("purchase", "succeeded", "USD"))
        registry.set(DB_POOL_IN_USE, ("api",), 3)
    api_a.inc(HTTP_REQUESTS, ('/odd"path\\', "GET", "404"))
    await store.push("api-a", api_a.take())
    await store.push("api-b", api_b.take())

    series = {**await store.counters(), **await store.gauges()}
    families = _families(render(series))
    route = (("method", "POST"), ("route", "/api/payments/purchase"))
    assert families["paygrid_http_requests_total"][(*route, ("status", "200"))] == 2
    assert (
        families["paygrid_http_requests_total"][
            (("method", "GET"), ("route", '/odd"path\\'), ("status", "404"))
        ]
        == 1
    )
    buckets = families["paygrid_http_request_duration_seconds_bucket"]
    assert buckets[(("le", "0.025"), *route)] == 0
    assert buckets[(("le", "0.05"), *route)] == 1
    assert buckets[(("le", "0.5"), *route)] == 2
    assert buckets[(("le", "+Inf"), *route)] == 2
    assert families["paygrid_http_request_duration_seconds_count"][route] == 2
    assert families["paygrid_http_request_duration_seconds_sum"][route] == pytest.approx(0.33)
    assert (
        families["paygrid_payments_total"][
            (("currency", "USD"), ("operation", "purchase"), ("outcome", "succeeded"))
        ]
        == 2
    )
    assert families["paygrid_db_pool_connections_in_use"][(("component", "api"),)] == 6


async def test_deltas_only_and_gauges_of_a_silent_process_drop_out(store: MetricsStore) -> None:
    registry = Registry()
    registry.inc(PAYMENTS, ("refund", "refused", "EUR"), 2)
    registry.set(DB_POOL_IN_USE, ("shard",), 1)
    await store.push("shard-0", registry.take())
    await store.push("shard-0", registry.take())  # nothing new: the counter stays at 2
    assert set((await store.counters()).values()) == {2.0}
    assert sum((await store.gauges()).values()) == 1

    async def gone() -> bool:
        return await store.gauges() == {}

    await wait_until(gone, timeout_s=5, what="the silent process's gauges to expire")


async def test_a_failed_push_is_kept_for_the_next(infra: dict[str, str]) -> None:
    proxy: CuttableProxy = proxy_for_dsn(infra["redis_url"])
    await proxy.start()
    client = connect_redis(through_proxy(infra["redis_url"], proxy.port))
    store = MetricsStore(client, prefix=f"test:metrics:{uuid.uuid4().hex}", gauge_ttl_s=5)
    registry = Registry()
    publisher = Publisher(registry, store, source="p", interval_s=60)
    try:
        registry.inc(PAYMENTS, ("void", "succeeded", "none"))
        proxy.sever()
        with pytest.raises(Exception):  # noqa: B017, PT011 - redis-py's connection error
            await publisher.publish()
        proxy.restore()
        registry.inc(PAYMENTS, ("void", "succeeded", "none"))
        await publisher.publish()
        assert list((await store.counters()).values()) == [2.0]
    finally:
        await client.delete(*[k async for k in client.scan_iter(match="test:metrics:*")])
        await client.aclose()
        await proxy.stop()


def test_every_family_has_help_and_type_even_when_empty() -> None:
    families = {f.name: f for f in text_string_to_metric_families(render({}))}
    for spec in CATALOGUE:
        name = spec.name.removesuffix("_total")
        assert families[name].type == spec.kind.value
        assert families[name].documentation


def test_window_signals_and_quantile_follow_histogram_quantile() -> None:
    registry = Registry()
    for i in range(100):
        status = "503" if i < 2 else "200"
        registry.inc(HTTP_REQUESTS, ("/x", "GET", status))
        registry.observe(HTTP_DURATION, ("/x", "GET"), 0.3 if i < 10 else 0.01)
    requests, errors, p95_ms = http_signals(registry.take().counters)
    assert (requests, errors) == (100, 2)
    # 90 in (0.005, 0.01], 10 in (0.2, 0.5]: the 95th is halfway into the latter bucket.
    assert p95_ms == pytest.approx(350)
    assert quantile(0.5, {}) is None
    assert quantile(0.99, {1.0: 0, float("inf"): 4}) == 1.0


def test_recording_costs_microseconds() -> None:
    registry = Registry()

    def one_request() -> None:
        registry.inc(HTTP_REQUESTS, ("/api/payments/purchase", "POST", "200"))
        registry.observe(HTTP_DURATION, ("/api/payments/purchase", "POST"), 0.012)

    runs = 100_000
    seconds = timeit.timeit(one_request, number=runs)
    # Measured ~0.5 µs on the 2-core box; the bound leaves room for a loaded machine.
    assert seconds / runs < 20e-6


async def test_the_service_adds_queue_depth_and_lag_from_postgresql(
    store: MetricsStore, database: Database
) -> None:
    registry = Registry()
    registry.inc(PAYMENTS, ("purchase", "declined", "USD"))
    await store.push("api-x", registry.take())
    text = await MetricsService(store, QueueService(database, (DELIVERIES, JOBS))).exposition()
    families = _families(text)
    assert families["paygrid_queue_depth"][(("queue", "webhooks"),)] == 0
    assert families["paygrid_queue_lag_seconds"][(("queue", "scheduler"),)] == 0
    assert (
        families["paygrid_payments_total"][
            (("currency", "USD"), ("operation", "purchase"), ("outcome", "declined"))
        ]
        == 1
    )


async def test_route_stats_count_errors_and_latency_per_route_over_the_window(
    store: MetricsStore,
) -> None:
    registry = Registry()
    route = "/api/payments/{payment_id}"
    # 20 requests: 2 answered 500, 3 answered 404; latencies 10 ms (10), 150 ms (9), 3 s (1).
    for i in range(20):
        status = "500" if i < 2 else "404" if i < 5 else "200"
        registry.inc(HTTP_REQUESTS, (route, "GET", status))
        registry.observe(HTTP_DURATION, (route, "GET"), 0.01 if i < 10 else 0.15 if i < 19 else 3)
    registry.inc(HTTP_REQUESTS, ("/api/customers", "POST", "201"))
    registry.observe(HTTP_DURATION, ("/api/customers", "POST"), 0.02)
    now = 1_800_000_000.0
    await store.push("api-a", registry.take(), now=now)
    # An hour ago: inside `window=1h` (61 minute windows), outside `window=5m` (6).
    registry.inc(HTTP_REQUESTS, (route, "GET", "200"))
    registry.observe(HTTP_DURATION, (route, "GET"), 0.01)
    await store.push("api-b", registry.take(), now=now - 3600)

    recent = route_stats(await store.span(6, now=now))
    assert [(s.method, s.route, s.count) for s in recent] == [
        ("GET", route, 20),
        ("POST", "/api/customers", 1),
    ]
    stats = recent[0].public()
    assert (stats["server_errors"], stats["error_rate"]) == (2, 0.1)
    assert (stats["client_errors"], stats["client_error_rate"]) == (3, 0.15)
    # Within the bucket, as histogram_quantile: rank 10 of 20 is the 10 ms bucket's top, rank
    # 19 the 200 ms bucket's; rank 19.8 lies 80 % into the one from 2.5 s to 5 s.
    assert (stats["p50_ms"], stats["p95_ms"], stats["p99_ms"]) == (10.0, 200.0, 4500.0)

    hour = route_stats(await store.span(61, now=now))
    assert hour[0].count == 21
    with pytest.raises(ValueError, match="span"):
        await store.span(62, now=now)
