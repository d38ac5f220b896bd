"""Health against real servers reached through proxies the test cuts: Redis unreachable is
`degraded`, PostgreSQL unreachable is `down`, and both recover when they return; a component
that hangs costs one timeout, never a hung report; crossed thresholds are warnings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from engine.db.database import Database, open_database
from engine.health.checks import Check, database_check, quorum, redis_check
from engine.health.report import Probe
from engine.health.service import HealthService
from engine.health.thresholds import Signals, Thresholds, crossed
from engine.shared_state import connect_redis
from schema.states import HealthStatus
from tests.tcp_proxy import CuttableProxy, proxy_for_dsn, through_proxy
from tests.waiting import wait_until

TIMEOUT_S = 0.5


@pytest.fixture
async def pg_proxy(migrated_dsn: str) -> AsyncIterator[CuttableProxy]:
    proxy = proxy_for_dsn(migrated_dsn)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def redis_proxy(infra: dict[str, str]) -> AsyncIterator[CuttableProxy]:
    proxy = proxy_for_dsn(infra["redis_url"])
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def db(migrated_dsn: str, pg_proxy: CuttableProxy) -> AsyncIterator[Database]:
    opened = await open_database(
        through_proxy(migrated_dsn, pg_proxy.port), min_size=1, max_size=2, acquire_timeout_s=2
    )
    yield opened
    await opened.close()


@pytest.fixture
async def redis(infra: dict[str, str], redis_proxy: CuttableProxy) -> AsyncIterator[Redis]:
    client = connect_redis(through_proxy(infra["redis_url"], redis_proxy.port))
    yield client
    await client.aclose()


async def _status_is(health: HealthService, status: HealthStatus) -> bool:
    return (await health.report()).status is status


@pytest.fixture
def health(db: Database, redis: Redis) -> HealthService:
    return HealthService([database_check(db), redis_check(redis)], timeout_s=TIMEOUT_S)


async def test_ok_when_both_answer(health: HealthService) -> None:
    report = await health.report()
    assert report.status is HealthStatus.OK
    assert report.component("database").status is HealthStatus.OK
    assert report.component("database").detail["pool_max"] == 2
    assert report.component("redis").latency_ms >= 0
    assert report.warnings == ()


async def test_redis_unreachable_is_degraded_and_recovers(
    health: HealthService, redis_proxy: CuttableProxy
) -> None:
    redis_proxy.sever()
    report = await health.report()
    assert report.status is HealthStatus.DEGRADED
    redis = report.component("redis")
    assert redis.status is HealthStatus.DOWN
    assert redis.error is not None
    assert report.component("database").status is HealthStatus.OK
    # The report names no host or port, whatever the error said.
    assert "127.0.0.1" not in str(report.public())
    assert str(redis_proxy.port) not in str(report.public())

    redis_proxy.restore()
    await wait_until(lambda: _status_is(health, HealthStatus.OK), timeout_s=10, what="recovery")


async def test_database_unreachable_is_down_and_recovers(
    health: HealthService, pg_proxy: CuttableProxy
) -> None:
    pg_proxy.sever()
    started = time.monotonic()
    report = await health.report()
    assert time.monotonic() - started < TIMEOUT_S + 1
    assert report.status is HealthStatus.DOWN
    assert report.component("database").status is HealthStatus.DOWN
    assert (await health.ready()).status is HealthStatus.DOWN

    pg_proxy.restore()
    # A pooled connection cut by the outage may fail one more probe before it is replaced.
    await wait_until(lambda: _status_is(health, HealthStatus.OK), timeout_s=10, what="recovery")
    assert (await health.ready()).status is HealthStatus.OK


async def test_a_hung_component_costs_one_timeout() -> None:
    async def never() -> Probe:
        await asyncio.Event().wait()
        return Probe()

    async def fine() -> Probe:
        return Probe()

    health = HealthService(
        [Check("hung", never), Check("fine", fine, on_failure=HealthStatus.DOWN)], timeout_s=0.2
    )
    started = time.monotonic()
    report = await health.report()
    assert time.monotonic() - started < 1.0
    assert report.component("hung").error == "timeout"
    assert report.status is HealthStatus.DEGRADED
    assert (await health.ready()).status is HealthStatus.OK


async def test_reports_are_shared_within_the_cache_period() -> None:
    calls = 0

    async def counted() -> Probe:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return Probe()

    health = HealthService([Check("c", counted)], timeout_s=1, cache_s=60)
    await asyncio.gather(*(health.report() for _ in range(20)))
    await health.report()
    assert calls == 1


async def test_thresholds_crossed_are_warnings_and_degrade() -> None:
    async def signals() -> Signals:
        return Signals(
            requests=100,
            server_errors=2,
            p95_ms=250,
            pool_in_use=8,
            pool_max=10,
            queue_depths={"webhooks": 1000, "scheduler": 3},
        )

    async def fine() -> Probe:
        return Probe()

    health = HealthService([Check("c", fine)], timeout_s=1, signals=signals)
    report = await health.report()
    assert report.status is HealthStatus.DEGRADED
    names = {w.name for w in report.warnings}
    assert names == {"error_rate", "response_time_ms", "database_pool_use", "queue_depth:webhooks"}


def test_below_every_threshold_or_too_few_requests_warns_nothing() -> None:
    limits = Thresholds()
    calm = Signals(requests=1000, server_errors=10, p95_ms=200, pool_in_use=7, pool_max=10)
    assert crossed(calm, limits) == []
    assert crossed(Signals(requests=19, server_errors=19, p95_ms=5000), limits) == []
    assert crossed(Signals(queue_depths={"webhooks": 999}), limits) == []


def test_quorum() -> None:
    assert quorum(2, 2).status is HealthStatus.OK
    assert quorum(1, 2).status is HealthStatus.DEGRADED
    assert quorum(0, 2).status is HealthStatus.DOWN
