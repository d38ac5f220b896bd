"""Queue management: stats, pause that waits and survives a dispatcher restart, resume that
drains, clear that refuses work in flight, and a dispatcher killed mid-delivery losing nothing."""

from __future__ import annotations

import asyncio
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
from engine.ratelimit.limits import UNLIMITED
from engine.scheduler.repository import JobRepository
from serve_app.app import build
from tests.factories import Api
from tests.serve_app.routes.receiver import Receiver, create_endpoint, until

DISPATCHER = "webhook-dispatcher-0"
SCHEDULER = "job-scheduler-0"


@pytest.fixture(scope="module")
async def admin(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    # Unlimited: admin routes allow 10/s, and these tests are not about the limit.
    _, secret = await keys.create(name="ops", scopes=frozenset({Scope.ADMIN}), rate_limit=UNLIMITED)
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
    await until(
        lambda: len({r.headers["webhook-id"] for r in receiver.at(path)}) >= count,
        f"{count} distinct deliveries at {path}",
    )


async def _incarnation(name: str) -> tuple[int, int] | None:
    """The pid of a queue worker's current incarnation and how many claims it has run; None
    while it is restarting."""
    handle = ray.get_actor(name, namespace=NAMESPACE)
    try:
        where: dict[str, Any] = await handle.where.remote()
        activity: dict[str, int] = await handle.activity.remote()
    except ray.exceptions.RayError:
        return None
    return int(where["pid"]), activity["polls"]


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
    admin: Api, api: Api, receiver: Receiver, hook: dict[str, Any], db: asyncpg.Pool
) -> None:
    paused = await admin.post("/api/queues/pause", {"queue": "webhooks"})
    assert paused.json()["data"] == {"paused": ["webhooks"]}
    try:
        for _ in range(3):
            await api.purchase(amount=100)
        before = await _incarnation(DISPATCHER)
        assert before is not None
        ray.kill(ray.get_actor(DISPATCHER, namespace=NAMESPACE), no_restart=False)

        async def restarted_and_polled() -> bool:
            # Two claims of the new incarnation began: the first has ended, having taken nothing.
            now = await _incarnation(DISPATCHER)
            return now is not None and now[0] != before[0] and now[1] >= 2

        await until(restarted_and_polled, "the restarted dispatcher to poll the paused queue")
        assert receiver.at(hook["path"]) == []
        attempts = await db.fetch(
            "SELECT attempts FROM webhook_deliveries WHERE endpoint_id = $1::uuid", hook["id"]
        )
        assert [r["attempts"] for r in attempts] == [0, 0, 0]  # never claimed
        stats = _queue((await admin.get("/api/queues/stats")).json()["data"], "webhooks")
        assert stats["paused"] is True
        assert stats["waiting"] >= 3
    finally:
        resumed = await admin.post("/api/queues/resume", {})
        assert resumed.json()["data"] == {"resumed": ["webhooks", "scheduler"]}
    await _received(receiver, hook["path"], 3)


async def test_clear_only_finished_jobs(admin: Api, db: asyncpg.Pool) -> None:
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
    dead = [
        r["id"] for r in await db.fetch("SELECT id FROM webhook_deliveries WHERE status = 'dead'")
    ]
    cleared = await admin.http.delete(
        "/api/queues/clear", params={"queue": "webhooks", "state": "dead"}, headers=admin.headers()
    )
    assert cleared.status_code == 200
    assert cleared.json()["data"]["state"] == "dead"
    # Deliveries to endpoints other tests left may die meanwhile; every one dead before is gone.
    left = "SELECT count(*) FROM webhook_deliveries WHERE id = ANY($1::uuid[])"
    assert await db.fetchval(left, dead) == 0


async def test_killed_dispatcher_loses_nothing(
    api: Api, receiver: Receiver, hook: dict[str, Any]
) -> None:
    receiver.script[hook["path"]] = []
    purchases = 12
    for _ in range(purchases):
        await api.purchase(amount=100)
    await _received(receiver, hook["path"], 1)
    ray.kill(ray.get_actor(DISPATCHER, namespace=NAMESPACE), no_restart=False)
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
    # An event that old was delivered long ago: drop what the fan-out gave it now (endpoints
    # other tests left subscribed to everything), which would rightly keep it from the purge.
    await db.execute("DELETE FROM webhook_deliveries WHERE event_id = $1", old)
    await admin.post("/api/queues/pause", {"queue": "scheduler"})
    try:
        async with db.acquire() as conn:
            job = await JobRepository().enqueue(
                conn, kind="events.purge", payload={"retention_days": 365}
            )
        # The insert's NOTIFY wakes the scheduler; two claims begun since it committed mean the
        # first has ended, having taken nothing from the paused queue.
        before = await _incarnation(SCHEDULER)
        assert before is not None

        async def polled() -> bool:
            now = await _incarnation(SCHEDULER)
            return now is not None and now[1] >= before[1] + 2

        await until(polled, "the scheduler to poll the paused queue")
        row = await db.fetchrow("SELECT status, attempts FROM scheduled_jobs WHERE id = $1", job)
        assert (row["status"], row["attempts"]) == ("pending", 0)
    finally:
        await admin.post("/api/queues/resume", {"queue": "scheduler"})

    async def ran() -> bool:
        status = await db.fetchval("SELECT status FROM scheduled_jobs WHERE id = $1", job)
        return bool(status == "succeeded")

    await until(ran, "the job to run")
    assert await db.fetchval("SELECT count(*) FROM events WHERE id = $1", old) == 0
    housekeeping = await db.fetchval(
        "SELECT count(*) FROM scheduled_jobs WHERE dedupe_key = 'recurring:events.purge' "
        "AND status = 'pending'"
    )
    assert housekeeping == 1
    stats = _queue((await admin.get("/api/queues/stats")).json()["data"], "scheduler")
    assert stats["completed"] >= 1
