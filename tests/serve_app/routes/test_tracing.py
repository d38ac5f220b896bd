"""Request tracing on the session's cluster: one correlation id on every row a purchase caused
(transaction, ledger entries, events, webhook delivery and attempt, audit rows) and on the
ledger shard's log line; a purchase's and a refund's timelines; a slow request listed by
another replica while it runs; per-route figures that match a known load."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from ray.cluster_utils import Cluster
from redis.asyncio import Redis

from engine.auth.keys import ApiKeyService
from engine.config import Settings
from engine.gateways.sandbox import SandboxGateway
from engine.ratelimit.limits import UNLIMITED
from schema.states import Scope
from serve_app.app import DEPLOYMENT_NAME, create_app
from serve_app.state import open_state
from tests.factories import Api, payment_body
from tests.ray_cluster import alive_nodes
from tests.serve_app.routes.receiver import Receiver, create_endpoint, until
from tests.waiting import wait_until

TIMELINE = "/api/tracing/requests/{correlation_id}"


@pytest.fixture
async def admin(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    _, secret = await keys.create(
        name="tracing admin", scopes=frozenset({Scope.ADMIN}), rate_limit=UNLIMITED
    )
    return Api(http, secret)


@pytest.fixture
async def hooked(api: Api, receiver: Receiver) -> AsyncIterator[dict[str, Any]]:
    """An endpoint for this test's payment events, deleted afterwards."""
    endpoint = await create_endpoint(
        api,
        f"{receiver.base_url}/tracing-{uuid.uuid4().hex[:8]}",
        ["payment.succeeded", "payment.refunded"],
    )
    yield endpoint
    await api.http.delete(f"/api/webhooks/endpoints/{endpoint['id']}", headers=api.headers())


def _cid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


async def _purchase(api: Api, cid: str, **kwargs: Any) -> dict[str, Any]:
    response = await api.post(
        "/api/payments/purchase", payment_body(**kwargs), **{"X-Correlation-ID": cid}
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def _attempted(db: asyncpg.Pool, endpoint_id: str, count: int) -> None:
    async def done() -> bool:
        found = await db.fetchval(
            """SELECT count(*) FROM webhook_attempts a
               JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = $1::uuid""",
            endpoint_id,
        )
        return bool(found >= count)

    await until(done, f"{count} webhook attempt(s) recorded")


async def _ids(db: asyncpg.Pool, table: str, cid: str) -> set[str]:
    rows = await db.fetch(f"SELECT id::text FROM {table} WHERE correlation_id = $1", cid)
    return {r["id"] for r in rows}


async def test_a_purchase_s_correlation_id_is_on_every_row_it_caused(
    api: Api, db: asyncpg.Pool, hooked: dict[str, Any]
) -> None:
    cid = _cid("corr-rows")
    payment = await _purchase(api, cid, amount=1300)
    await _attempted(db, hooked["id"], 1)

    assert (
        await db.fetchval(
            "SELECT correlation_id FROM transactions WHERE id = $1::uuid", payment["id"]
        )
        == cid
    )
    for sql in (
        "SELECT correlation_id FROM ledger_entries WHERE transaction_id = $1::uuid",
        "SELECT correlation_id FROM events WHERE object_id = $1::uuid",
        "SELECT correlation_id FROM audit_logs WHERE entity_id = $1::uuid",
        """SELECT d.correlation_id FROM webhook_deliveries d JOIN events e ON e.id = d.event_id
           WHERE e.object_id = $1::uuid""",
        """SELECT a.correlation_id FROM webhook_attempts a
           JOIN webhook_deliveries d ON d.id = a.delivery_id JOIN events e ON e.id = d.event_id
           WHERE e.object_id = $1::uuid""",
    ):
        found = [r["correlation_id"] for r in await db.fetch(sql, payment["id"])]
        assert found, sql
        assert set(found) == {cid}, (sql, found)


async def _timeline(admin: Api, cid: str) -> list[dict[str, Any]]:
    response = await admin.get(f"/api/tracing/requests/{cid}")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["correlation_id"] == cid
    assert data["truncated"] is False
    entries: list[dict[str, Any]] = data["entries"]
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    return entries


def _of(entries: list[dict[str, Any]], kind: str) -> set[str]:
    return {e["id"] for e in entries if e["kind"] == kind}


async def test_timelines_of_a_purchase_and_its_refund(
    api: Api, admin: Api, db: asyncpg.Pool, hooked: dict[str, Any]
) -> None:
    bought, refunded = _cid("timeline-buy"), _cid("timeline-refund")
    payment = await _purchase(api, bought, amount=2500)
    response = await api.post(
        "/api/payments/refund",
        {"payment_id": payment["id"], "amount": 1000},
        **{"X-Correlation-ID": refunded},
    )
    assert response.status_code == 200, response.text
    await _attempted(db, hooked["id"], 2)

    purchase = await _timeline(admin, bought)
    assert _of(purchase, "payment") == {payment["id"]}

    # The session traces every request into the in-memory store: the request's spans, from
    # the replica and the shard, join its timeline once their processes have exported them.
    async def traced() -> bool:
        spans = [e for e in await _timeline(admin, bought) if e["kind"] == "span"]
        names = {e["detail"]["name"] for e in spans}
        return {"POST /api/payments/purchase", "LedgerShard CreatePayment"} <= names

    await wait_until(traced, timeout_s=30, what="the purchase's spans in its timeline")
    assert [e["detail"]["kind"] for e in purchase if e["kind"] == "gateway_attempt"] == ["charge"]
    refund = await _timeline(admin, refunded)
    [refund_id] = _of(refund, "refund")
    assert _of(refund, "operation") == {refund_id}
    assert _of(refund, "payment") == {payment["id"]}
    assert [e["detail"]["kind"] for e in refund if e["kind"] == "gateway_attempt"] == ["refund"]
    for cid, entries in ((bought, purchase), (refunded, refund)):
        for kind, table in (
            ("ledger_entry", "ledger_entries"),
            ("event", "events"),
            ("webhook_delivery", "webhook_deliveries"),
            ("webhook_attempt", "webhook_attempts"),
            ("audit", "audit_logs"),
        ):
            expected = await _ids(db, table, cid)
            assert expected, (cid, kind)
            assert _of(entries, kind) == expected, (cid, kind)
        # AML alerts (a refund soon after its purchase may raise one) are listed too.
        assert _of(entries, "compliance_alert") == await _ids(db, "compliance_alerts", cid)


async def test_timeline_refusals(admin: Api) -> None:
    unknown = await admin.get(f"/api/tracing/requests/{_cid('never-used')}")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["param"] == "correlation_id"
    for bad in ("x" * 129, "with space"):
        refused = await admin.get(f"/api/tracing/requests/{bad}")
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "correlation_id"


@pytest.fixture
async def other_replica(cluster: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second API replica, opened in this process on the session's cluster: the same
    actors, database and Redis as the deployed one, its own process name."""
    state = await open_state(cluster, DEPLOYMENT_NAME, process="api-tracing-other")
    app = create_app(state.settings, state.metrics.registry, state.inflight)
    app.state.paygrid = state
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40001))
    async with httpx.AsyncClient(transport=transport, base_url="http://paygrid") as client:
        yield client
    await state.close()


async def test_another_replica_lists_a_slow_request_while_it_runs(
    api: Api, admin: Api, other_replica: httpx.AsyncClient
) -> None:
    cid = _cid("slow")
    body = json.dumps(payment_body(amount=800)).encode()
    release = asyncio.Event()

    async def slowly() -> AsyncIterator[bytes]:
        # The request stays in flight on the deployed replica until the test lets it finish.
        yield body[:20]
        await release.wait()
        yield body[20:]

    headers = {**api.headers(), "Content-Type": "application/json", "X-Correlation-ID": cid}
    slow = asyncio.create_task(
        api.http.post("/api/payments/purchase", content=slowly(), headers=headers)
    )
    seen: list[dict[str, Any]] = []

    async def listed() -> bool:
        answer = await other_replica.get("/api/tracing/active", headers=admin.headers())
        assert answer.status_code == 200, answer.text
        seen[:] = [r for r in answer.json()["data"] if r["correlation_id"] == cid]
        return bool(seen)

    try:
        await wait_until(listed, timeout_s=30, what="the slow request listed")
    finally:
        release.set()
        response = await slow
    assert response.status_code == 200, response.text
    [entry] = seen
    assert (entry["method"], entry["route"]) == ("POST", "/api/payments/purchase")
    assert entry["replica"].startswith("api-")
    assert entry["replica"] != "api-tracing-other"
    assert entry["node"] in alive_nodes()
    assert entry["elapsed_ms"] >= 0

    async def gone() -> bool:
        return not await listed()

    await wait_until(gone, timeout_s=30, what="the finished request to leave the list")


async def _route(admin: Api, window: str) -> dict[str, Any]:
    answer = await admin.get("/api/tracing/stats", window=window)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    assert data["window"] == window
    for route in data["routes"]:
        if (route["method"], route["route"]) == ("GET", TIMELINE):
            return route  # type: ignore[no-any-return]
    return {"count": 0, "server_errors": 0, "client_errors": 0}


async def test_stats_match_a_known_load(api: Api, admin: Api) -> None:
    cid = _cid("stats")
    await _purchase(api, cid)
    before = await _route(admin, "1h")
    # Five timeline reads: three found, two unknown (404).
    for known in (True, True, False, True, False):
        asked = cid if known else _cid("stats-unknown")
        answer = await admin.get(f"/api/tracing/requests/{asked}")
        assert answer.status_code == (200 if known else 404)
    after: dict[str, Any] = {}

    async def counted() -> bool:
        after.update(await _route(admin, "1h"))
        return bool(after["count"] - before["count"] >= 5)

    await wait_until(counted, timeout_s=30, what="five more timeline reads counted")
    assert after["count"] - before["count"] == 5
    assert after["client_errors"] - before["client_errors"] == 2
    assert after["server_errors"] == before["server_errors"]
    assert after["client_error_rate"] == after["client_errors"] / after["count"]
    assert after["p50_ms"] is not None
    assert after["p50_ms"] <= after["p99_ms"]
    recent = await _route(admin, "5m")
    assert recent["count"] >= 5

    refused = await admin.get("/api/tracing/stats", window="2d")
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "window"


def _lines_with(logs_dir: Path, needle: str) -> list[dict[str, Any]]:
    """The JSON lines of the workers' stderr files that contain `needle`."""
    found = []
    for path in sorted(logs_dir.glob("worker-*.err")):
        for line in path.read_text(errors="replace").splitlines():
            if needle in line and line.startswith("{"):
                found.append(json.loads(line))
    return found


async def test_a_ledger_shard_logs_json_with_the_request_s_correlation_id(
    api: Api, cluster: Settings, ray_nodes: Cluster
) -> None:
    cid = _cid("shard-log")
    redis = Redis.from_url(cluster.redis_dsn)
    sandbox = SandboxGateway(redis)
    # One purchase fails over from `sandbox` to `sandbox_b`: the shard logs the switch.
    await sandbox.set_outage(True)
    try:
        payment = await _purchase(api, cid, amount=600)
    finally:
        await sandbox.set_outage(False)
        await redis.aclose()
    assert payment["gateway"] == "sandbox_b"
    # Ray keeps each worker's stderr in its session's log directory.
    head: Any = ray_nodes.head_node
    logs_dir = Path(head.get_logs_dir_path())
    found: list[dict[str, Any]] = []

    async def logged() -> bool:
        found[:] = await asyncio.to_thread(_lines_with, logs_dir, cid)
        return bool(found)

    await wait_until(logged, timeout_s=30, what="the shard's log line")
    [line] = found
    assert line["correlation_id"] == cid
    assert (line["component"], line["level"]) == ("shard", "WARNING")
    assert line["process"].startswith("ledger-shard-")
    assert payment["id"] in line["message"]
    assert {"timestamp", "logger"} <= line.keys()
