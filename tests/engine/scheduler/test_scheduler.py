"""The scheduler on the lease queue, without Ray: a job runs, a failing one is retried with
backoff and dead-lettered, an unknown kind fails at once, a recurring job queues its next run
exactly once however many schedulers run it, and the housekeeping jobs purge what they should.
The scheduler reads only its own settings."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from opentelemetry import trace
from redis.asyncio import Redis

from engine.config import Settings
from engine.db.database import Database
from engine.db.pool import create_pool
from engine.queueing.policy import RetryPolicy
from engine.queueing.settings import QueueSettings, scheduler_queue_settings
from engine.scheduler.handlers import Handler, purge_events, purge_idempotency_keys
from engine.scheduler.repository import JobRepository
from engine.scheduler.service import Scheduler, recurring_key
from engine.tracing import flush_tracing, spans_for_trace
from tests.engine.queueing.helpers import add_endpoint
from tests.waiting import wait_until

QUICK = QueueSettings(
    poll_s=0.05, lease_s=60, max_in_flight=10, policy=RetryPolicy(schedule_s=(0.05, 0.1), jitter=0)
)
EVERY_S = 3600.0


async def _job(pool: asyncpg.Pool, job_id: Any) -> asyncpg.Record:
    return await pool.fetchrow(
        "SELECT status, attempts, last_error, completed_at FROM scheduled_jobs WHERE id = $1",
        job_id,
    )


async def _enqueue(pool: asyncpg.Pool, kind: str, payload: dict[str, Any] | None = None) -> Any:
    async with pool.acquire() as conn:
        return await JobRepository().enqueue(conn, kind=kind, payload=payload or {})


async def _run_until(scheduler: Scheduler, pool: asyncpg.Pool, job_id: Any, status: str) -> None:
    async def reached() -> bool:
        await scheduler.worker.pump()
        await scheduler.worker.drain()
        return bool((await _job(pool, job_id))["status"] == status)

    await wait_until(reached, what=f"the job to be {status}", timeout_s=10)


async def test_a_job_runs_with_its_payload(pool: asyncpg.Pool) -> None:
    seen: list[dict[str, Any]] = []

    async def record(db: Database, payload: dict[str, Any]) -> None:
        seen.append(payload)

    scheduler = Scheduler(Database(pool), {"test.record": record}, QUICK)
    job = await _enqueue(pool, "test.record", {"x": 1})
    assert await scheduler.worker.pump() == 1
    await scheduler.worker.drain()
    row = await _job(pool, job)
    assert (row["status"], row["attempts"], row["last_error"]) == ("succeeded", 1, None)
    assert row["completed_at"] is not None
    assert seen == [{"x": 1}]


async def test_a_failing_job_is_retried_then_succeeds(pool: asyncpg.Pool) -> None:
    calls = 0

    async def flaky(db: Database, payload: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the first try fails")

    scheduler = Scheduler(Database(pool), {"test.flaky": flaky}, QUICK)
    job = await _enqueue(pool, "test.flaky")
    await scheduler.worker.pump()
    await scheduler.worker.drain()
    first = await _job(pool, job)
    assert (first["status"], first["attempts"]) == ("pending", 1)
    assert first["last_error"] == "ConnectionError: the first try fails"
    await _run_until(scheduler, pool, job, "succeeded")
    assert (await _job(pool, job))["attempts"] == 2


async def test_a_job_that_keeps_failing_goes_dead(pool: asyncpg.Pool) -> None:
    async def broken(db: Database, payload: dict[str, Any]) -> None:
        raise ValueError("always")

    scheduler = Scheduler(Database(pool), {"test.broken": broken}, QUICK)
    job = await _enqueue(pool, "test.broken")
    await _run_until(scheduler, pool, job, "dead")
    row = await _job(pool, job)
    assert row["attempts"] == QUICK.policy.max_attempts
    assert row["last_error"] == "ValueError: always"


async def test_an_unknown_kind_fails_at_once(pool: asyncpg.Pool) -> None:
    scheduler = Scheduler(Database(pool), {}, QUICK)
    job = await _enqueue(pool, "test.unknown")
    await scheduler.worker.pump()
    await scheduler.worker.drain()
    row = await _job(pool, job)
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert row["last_error"] == "no handler for job kind 'test.unknown'"


SECRET_PAYLOAD = {"api_key": "pgk_schedulerjobsecret", "card": "4000056655665556"}


@pytest.mark.usefixtures("traced")
async def test_a_job_run_is_a_span_with_its_attributes_and_no_secret(
    pool: asyncpg.Pool, redis: Redis
) -> None:
    traces: list[str] = []

    async def failing(db: Database, payload: dict[str, Any]) -> None:
        traces.append(f"{trace.get_current_span().get_span_context().trace_id:032x}")
        raise ValueError(f"refused {payload['card']} with {payload['api_key']}")

    async def record(db: Database, payload: dict[str, Any]) -> None:
        traces.append(f"{trace.get_current_span().get_span_context().trace_id:032x}")

    scheduler = Scheduler(Database(pool), {"test.traced": record, "test.fails": failing}, QUICK)
    ok = await _enqueue(pool, "test.traced", SECRET_PAYLOAD)
    await _run_until(scheduler, pool, ok, "succeeded")
    failed = await _enqueue(pool, "test.fails", SECRET_PAYLOAD)
    await scheduler.worker.pump()
    await scheduler.worker.drain()
    assert await asyncio.to_thread(flush_tracing)
    (ok_trace, failed_trace) = traces[:2]
    assert ok_trace != failed_trace  # each run is a trace of its own
    for trace_id, job, kind, outcome, status in (
        (ok_trace, ok, "test.traced", "succeeded", "UNSET"),
        (failed_trace, failed, "test.fails", "retry", "ERROR"),
    ):
        spans = await spans_for_trace(redis, trace_id)
        (span,) = [s for s in spans if s.name == f"job {kind}"]
        assert span.kind == "CONSUMER"
        assert span.parent_span_id is None
        assert span.status == status
        assert span.attributes == {
            "paygrid.job.id": str(job),
            "paygrid.job.kind": kind,
            "paygrid.job.outcome": outcome,
        }
        text = b"".join(s.to_json() for s in spans).decode()
        for secret in SECRET_PAYLOAD.values():
            assert secret not in text


async def _recurring(pool: asyncpg.Pool, kind: str) -> list[asyncpg.Record]:
    return await pool.fetch(  # type: ignore[no-any-return]
        """SELECT status, extract(epoch FROM run_at - now())::float8 AS in_s
           FROM scheduled_jobs WHERE dedupe_key = $1 ORDER BY created_at""",
        recurring_key(kind),
    )


async def test_a_recurring_job_queues_its_next_run_once_with_two_schedulers(
    pool: asyncpg.Pool, migrated_dsn: str
) -> None:
    runs = 0

    async def tick(db: Database, payload: dict[str, Any]) -> None:
        nonlocal runs
        runs += 1

    handlers: dict[str, Handler] = {"test.tick": tick}
    recurring: dict[str, tuple[dict[str, Any], float]] = {"test.tick": ({}, EVERY_S)}
    other = await create_pool(migrated_dsn, min_size=1, max_size=2)
    try:
        schedulers = [
            Scheduler(Database(pool), handlers, QUICK, recurring),
            Scheduler(Database(other), handlers, QUICK, recurring),
        ]
        await asyncio.gather(*(s.ensure_recurring() for s in schedulers))
        [queued] = await _recurring(pool, "test.tick")
        assert queued["status"] == "pending"
        assert EVERY_S - 60 < queued["in_s"] <= EVERY_S

        await pool.execute("UPDATE scheduled_jobs SET run_at = now()")
        claimed = await asyncio.gather(*(s.worker.pump() for s in schedulers))
        await asyncio.gather(*(s.worker.drain() for s in schedulers))
        assert sorted(claimed) == [0, 1]
        assert runs == 1
        done, following = await _recurring(pool, "test.tick")
        assert done["status"] == "succeeded"
        assert following["status"] == "pending"
        assert EVERY_S - 60 < following["in_s"] <= EVERY_S
        await asyncio.gather(*(s.ensure_recurring() for s in schedulers))
        assert len(await _recurring(pool, "test.tick")) == 2  # still one next run
    finally:
        await other.close()


async def test_a_recurring_job_that_dies_still_queues_its_next_run(pool: asyncpg.Pool) -> None:
    async def broken(db: Database, payload: dict[str, Any]) -> None:
        raise RuntimeError("down")

    quick_death = QueueSettings(
        poll_s=0.05, lease_s=60, max_in_flight=10, policy=RetryPolicy(schedule_s=())
    )
    scheduler = Scheduler(
        Database(pool), {"test.broken": broken}, quick_death, {"test.broken": ({}, EVERY_S)}
    )
    await scheduler.ensure_recurring()
    await pool.execute("UPDATE scheduled_jobs SET run_at = now()")
    await scheduler.worker.pump()
    await scheduler.worker.drain()
    assert [r["status"] for r in await _recurring(pool, "test.broken")] == ["dead", "pending"]


async def _event(conn: asyncpg.Connection, days_old: int) -> Any:
    return await conn.fetchval(
        """INSERT INTO events (event_type, object_type, object_id, payload, created_at)
           VALUES ('payment.succeeded', 'payment', gen_random_uuid(), '{}',
                   now() - make_interval(days => $1)) RETURNING id""",
        days_old,
    )


async def test_purges_remove_only_what_is_past_retention(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        old = await _event(conn, 400)
        recent = await _event(conn, 20)
        await add_endpoint(conn)
        undelivered = await _event(conn, 400)  # its delivery is still pending
        await conn.execute(
            """INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, status,
                    expires_at)
               VALUES (gen_random_uuid(), 'expired', '\\x00', 'processing', now() - interval '1 h'),
                      (gen_random_uuid(), 'live', '\\x00', 'processing', now() + interval '1 h')"""
        )
    db = Database(pool)
    await purge_events(db, {"retention_days": 1})  # never below 30 days
    await purge_idempotency_keys(db, {})
    left = {r["id"] for r in await pool.fetch("SELECT id FROM events")}
    assert left == {recent, undelivered}
    assert old not in left
    keys = [r["idempotency_key"] for r in await pool.fetch("SELECT * FROM idempotency_keys")]
    assert keys == ["live"]


def test_the_scheduler_reads_only_its_own_settings() -> None:
    mine = Settings(scheduler_poll_s=2.5, scheduler_lease_s=120)
    queue = scheduler_queue_settings(mine)
    assert (queue.poll_s, queue.lease_s, queue.per_group) == (2.5, 120, None)
    webhooks_changed = Settings(
        scheduler_poll_s=2.5,
        scheduler_lease_s=120,
        webhook_poll_s=9,
        webhook_retry_schedule_s=(7,),
        webhook_jitter=0.5,
        webhook_max_delay_s=9,
        webhook_max_in_flight=3,
    )
    assert scheduler_queue_settings(webhooks_changed) == queue
