"""`/health` on the session's cluster: every component with its latency, naming no host, port
or secret; `/health/live` and `/health/ready`. Then an API the test owns, on the same cluster
but reaching PostgreSQL and Redis through proxies it cuts: `degraded` without Redis, `down`
(503) without PostgreSQL, `ok` again when they return."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr

from engine.config import Settings
from serve_app.app import DEPLOYMENT_NAME, create_app
from serve_app.state import AppState, open_state
from tests.tcp_proxy import CuttableProxy, proxy_for_dsn, through_proxy
from tests.waiting import wait_until

COMPONENTS = {
    "database",
    "redis",
    "ray_cluster",
    "serve_replicas",
    "ledger_shards",
    "webhook_dispatchers",
    "scheduler",
}


async def test_health_reports_every_component_and_no_address(
    http: httpx.AsyncClient, cluster: Settings
) -> None:
    answer = await http.get("/health", headers={"X-Correlation-ID": "health-check-1"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-correlation-id"] == "health-check-1"
    data = answer.json()["data"]
    # Degraded is possible here: another test of the session may have crossed a threshold.
    assert data["status"] in {"ok", "degraded"}
    assert set(data["components"]) == COMPONENTS
    for name, component in data["components"].items():
        assert component["status"] == "ok", (name, component)
        assert component["latency_ms"] >= 0
    assert data["components"]["ledger_shards"]["answered"] == cluster.ledger_shards
    assert data["components"]["serve_replicas"]["running"] == cluster.replicas
    text = answer.text
    for dsn in (cluster.database_dsn, cluster.redis_dsn):
        parts = urlsplit(dsn)
        assert dsn not in text
        assert f":{parts.port}" not in text
    assert "127.0.0.1" not in text


async def test_live_and_ready(http: httpx.AsyncClient) -> None:
    live = await http.get("/health/live")
    assert (live.status_code, live.json()["data"]["status"]) == (200, "ok")
    ready = await http.get("/health/ready")
    assert ready.status_code == 200
    assert set(ready.json()["data"]["components"]) == {"database", "ledger_shards"}


@pytest.fixture
async def proxies(cluster: Settings) -> AsyncIterator[tuple[CuttableProxy, CuttableProxy]]:
    pg, redis = proxy_for_dsn(cluster.database_dsn), proxy_for_dsn(cluster.redis_dsn)
    await pg.start()
    await redis.start()
    yield pg, redis
    await pg.stop()
    await redis.stop()


@pytest.fixture
async def proxied_state(
    cluster: Settings, proxies: tuple[CuttableProxy, CuttableProxy]
) -> AsyncIterator[AppState]:
    """A replica's state opened in this process (connected to the session's Ray): the same
    actors, but PostgreSQL and Redis behind the proxies."""
    pg, redis = proxies
    settings = cluster.model_copy(
        update={
            "database_url": SecretStr(through_proxy(cluster.database_dsn, pg.port)),
            "redis_url": SecretStr(through_proxy(cluster.redis_dsn, redis.port)),
            "db_acquire_timeout_s": 1.0,
            "metrics_trusted_networks": ("127.0.0.0/8",),
        }
    )
    state = await open_state(settings, DEPLOYMENT_NAME, process="api-health-test")
    yield state
    await state.close()


@pytest.fixture
async def owned(proxied_state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(proxied_state.settings, proxied_state.metrics.registry)
    app.state.paygrid = proxied_state
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://paygrid") as client:
        yield client


async def _status(client: httpx.AsyncClient) -> tuple[int, str]:
    answer = await client.get("/health")
    return answer.status_code, answer.json()["data"]["status"]


async def test_redis_lost_is_degraded_database_lost_is_down_and_both_recover(
    owned: httpx.AsyncClient, proxies: tuple[CuttableProxy, CuttableProxy]
) -> None:
    pg, redis = proxies

    async def healthy() -> bool:
        return await _status(owned) in {(200, "ok"), (200, "degraded")}

    await wait_until(healthy, timeout_s=30, what="the owned API healthy")

    redis.sever()
    answer = await owned.get("/health")
    assert answer.status_code == 200
    data = answer.json()["data"]
    assert (data["status"], data["components"]["redis"]["status"]) == ("degraded", "down")
    assert data["components"]["database"]["status"] == "ok"

    pg.sever()
    answer = await owned.get("/health")
    assert answer.status_code == 503
    assert answer.json()["data"]["status"] == "down"
    assert answer.json()["data"]["components"]["database"]["status"] == "down"
    assert (await owned.get("/health/ready")).status_code == 503
    assert (await owned.get("/health/live")).status_code == 200

    pg.restore()
    redis.restore()

    async def recovered() -> bool:
        data = (await owned.get("/health")).json()["data"]
        return all(data["components"][c]["status"] == "ok" for c in ("database", "redis"))

    await wait_until(recovered, timeout_s=30, what="database and Redis ok again")
    assert (await owned.get("/health/ready")).status_code == 200


async def test_metrics_from_a_trusted_network_need_no_key(owned: httpx.AsyncClient) -> None:
    answer = await owned.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert "# TYPE paygrid_http_requests_total counter" in answer.text
