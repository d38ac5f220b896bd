"""Queue management: stats, pause that waits and survives a dispatcher restart, resume that
drains, clear that refuses work in flight, and a dispatcher killed mid-delivery losing nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import ray
from ray import serve

from actors.options import NAMESPACE
from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.scheduler.repository import JobRepository
from serve_app.app import build
from tests.api.receiver import DEADLINE_S, Receiver, create_endpoint
from tests.factories import Api


@pytest.fixture(scope="module")
async def admin(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    _, secret = await keys.create(name="ops", scopes=frozenset({Scope.ADMIN}))
    return Api(http, secret)


@pytest.fixture
async def hook(
    api: Api, receiver: Receiver, request: pytest.FixtureRequest
) -> AsyncIterator[dict[str, Any]]:
    """An endpoint for payment.succeeded on its own path, deleted afterwards."""
    endpoint = await create_endpoint(
        api, f"{receiver.base_url}/{request.node.name}", ["payment.succeeded"]
    )
    endpoint["path"] = f"/{request.node.name}"
    yield endpoint
    await api.http.delete(f"/api/webhooks/endpoints/{endpoint['id']}", headers=api.headers())


async def _received(receiver: Receiver, path: str, count: int) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while len({r.headers["webhook-id"] for r in receiver.at(path)}) < count:
        assert time.monotonic() < deadline, f"only {len(receiver.at(path))} of {count} arrived"
        await asyncio.sleep(0.02)


def _queue(stats: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(s for s in stats if s["queue"] == name)


async def test_stats_info_and_health(admin: Api, api: Api) -> None:
    stats = (await admin.get("/api/queues/stats")).json()["data"]
    webhooks, scheduler = stats
    assert scheduler["queue"] == "scheduler"
    assert webhooks["queue"] == "webhooks"
    for field in (
        "waiting",
        "active",
        "delayed",
        "completed",
        "failed",
        "dead",
        "oldest_waiting_s",
        "throughput_per_s_last_minute",
        "paused",
    ):
        assert field in webhooks
    info = (await admin.get("/api/queues/info")).json()["data"]
    assert info["retry_policy"]["max_retries"] == 5
    assert all(d is not None and d["pid"] > 0 for d in info["webhook_dispatchers"])
    assert len(info["ledger_shards"]) == 2
    assert (await admin.get("/api/queues/health")).status_code == 200
    assert (await api.get("/api/queues/stats")).status_code == 403


async def test_pause_waits_survives_restart_and_resume_drains(
    admin: Api, api: Api, receiver: Receiver, hook: dict[str, Any]
) -> None:
    paused = await admin.post("/api/queues/pause", {"queue": "webhooks"})
    assert paused.json()["data"] == {"paused": ["webhooks"]}
    try:
        for _ in range(3):
            await api.purchase(amount=100)
        dispatcher = ray.get_actor("webhook-dispatcher-0", namespace=NAMESPACE)
        ray.kill(dispatcher, no_restart=False)
        await asyncio.sleep(1.0)  # the dispatcher restarts and polls many times meanwhile
        assert receiver.at(hook["path"]) == []
        stats = _queue((await admin.get("/api/queues/stats")).json()["data"], "webhooks")
        assert stats["paused"] is True
        assert stats["waiting"] >= 3
    finally:
        resumed = await admin.post("/api/queues/resume", {})
        assert resumed.json()["data"] == {"resumed": ["webhooks", "scheduler"]}
    await _received(receiver, hook["path"], 3)


async def test_clear_only_finished_jobs(admin: Api) -> None:
    for state in ("pending", "active", "waiting"):
        refused = await admin.http.delete(
            "/api/queues/clear",
            params={"queue": "webhooks", "state": state},
            headers=admin.headers(),
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == "state"
    unknown = await admin.http.delete(
        "/api/queues/clear", params={"queue": "x", "state": "dead"}, headers=admin.headers()
    )
    assert unknown.json()["error"]["param"] == "queue"
    cleared = await admin.http.delete(
        "/api/queues/clear", params={"queue": "webhooks", "state": "dead"}, headers=admin.headers()
    )
    assert cleared.status_code == 200
    assert cleared.json()["data"]["state"] == "dead"
    stats = _queue((await admin.get("/api/queues/stats")).json()["data"], "webhooks")
    assert stats["dead"] == 0


async def test_killed_dispatcher_loses_nothing(
    api: Api, receiver: Receiver, hook: dict[str, Any]
) -> None:
    receiver.script[hook["path"]] = []
    purchases = 12
    for _ in range(purchases):
        await api.purchase(amount=100)
    await _received(receiver, hook["path"], 1)
    ray.kill(ray.get_actor("webhook-dispatcher-0", namespace=NAMESPACE), no_restart=False)
    await _received(receiver, hook["path"], purchases)
    ids = [r.headers["webhook-id"] for r in receiver.at(hook["path"])]
    assert len(set(ids)) == purchases  # every event at least once; repeats share webhook-id


async def test_slow_receiver_does_not_starve_others(
    api: Api, receiver: Receiver, hook: dict[str, Any]
) -> None:
    slow = await create_endpoint(api, f"{receiver.base_url}/slow", ["payment.succeeded"])
    receiver.delay_s["/slow"] = 1.0
    try:
        purchases = 24
        for _ in range(purchases):
            await api.purchase(amount=100)
        await _received(receiver, hook["path"], purchases)
        # Every fast delivery is in while the slow endpoint (8 at a time, 1 s each) is not done.
        assert len(receiver.at("/slow")) < purchases
        await _received(receiver, "/slow", purchases)
    finally:
        receiver.delay_s.pop("/slow")
        await api.http.delete(f"/api/webhooks/endpoints/{slow['id']}", headers=api.headers())


async def test_serve_app_restart_loses_no_delivery(
    api: Api, receiver: Receiver, hook: dict[str, Any], cluster: Settings
) -> None:
    receiver.delay_s[hook["path"]] = 0.2
    try:
        purchases = 10
        for _ in range(purchases):
            await api.purchase(amount=100)
        await asyncio.to_thread(serve.delete, "paygrid")
        await asyncio.to_thread(
            serve.run, build(cluster), name="paygrid", route_prefix="/", blocking=False
        )
        await _received(receiver, hook["path"], purchases)
    finally:
        receiver.delay_s.pop(hook["path"])
    assert (await api.get("/api/payments", limit=1)).status_code == 200


async def test_scheduler_queue_runs_jobs_and_obeys_pause(admin: Api, db: asyncpg.Pool) -> None:
    old = await db.fetchval(
        """INSERT INTO events (event_type, object_type, object_id, payload, created_at)
           VALUES ('payment.succeeded', 'payment', gen_random_uuid(), '{}',
                   now() - interval '400 days') RETURNING id"""
    )
    await admin.post("/api/queues/pause", {"queue": "scheduler"})
    try:
        async with db.acquire() as conn:
            job = await JobRepository().enqueue(
                conn, kind="events.purge", payload={"retention_days": 365}
            )
        await asyncio.sleep(0.5)
        status = await db.fetchval("SELECT status FROM scheduled_jobs WHERE id = $1", job)
        assert status == "pending"
    finally:
        await admin.post("/api/queues/resume", {"queue": "scheduler"})
    deadline = time.monotonic() + DEADLINE_S
    while await db.fetchval("SELECT status FROM scheduled_jobs WHERE id = $1", job) != "succeeded":
        assert time.monotonic() < deadline, "the job never ran"
        await asyncio.sleep(0.05)
    assert await db.fetchval("SELECT count(*) FROM events WHERE id = $1", old) == 0
    housekeeping = await db.fetchval(
        "SELECT count(*) FROM scheduled_jobs WHERE dedupe_key = 'recurring:events.purge' "
        "AND status = 'pending'"
    )
    assert housekeeping == 1
    stats = _queue((await admin.get("/api/queues/stats")).json()["data"], "scheduler")
    assert stats["completed"] >= 1
