"""The lease queue against a real database: claims under a lease with SKIP LOCKED, leases that
run out, settles with backoff, dead letters and their replay, pausing, per-group room, stats
and clearing. The scheduler's table stands for an ungrouped queue, webhook deliveries (grouped
by endpoint) for a grouped one."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import asyncpg

from engine.db.database import Database
from engine.principal import Principal
from engine.queueing.policy import Outcome, RetryPolicy
from engine.queueing.repository import QueueRepository
from engine.queueing.service import QueueService
from engine.queueing.states import ClearableState, JobStatus, QueueName
from engine.scheduler.queue import JOBS
from engine.webhooks.queue import DELIVERIES
from engine.webhooks.states import EndpointStatus
from tests.engine.queueing.helpers import add_endpoint, add_events, add_jobs, listening
from tests.waiting import wait_until

OPERATOR = Principal(None, "test-operator")


async def test_two_claimers_never_take_the_same_item(pool: asyncpg.Pool) -> None:
    jobs = QueueRepository(JOBS)
    async with pool.acquire() as conn:
        made = set(await add_jobs(conn, 30))
    # One claimer holds its rows locked in an open transaction: the other skips them instead of
    # waiting, and takes the rest.
    async with pool.acquire() as first, pool.acquire() as second, first.transaction():
        held = await jobs.claim(first, limit=10, lease_s=60)
        other = await asyncio.wait_for(jobs.claim(second, limit=50, lease_s=60), timeout=5)
    assert len(held) == 10
    assert len(other) == 20
    assert {lease.id for lease in held} | {lease.id for lease in other} == made
    assert not {lease.id for lease in held} & {lease.id for lease in other}


async def test_concurrent_claimers_share_the_items_exactly(pool: asyncpg.Pool) -> None:
    jobs = QueueRepository(JOBS)
    async with pool.acquire() as conn:
        made = await add_jobs(conn, 40)

    async def claim() -> list[str]:
        async with pool.acquire() as conn:
            return [str(lease.id) for lease in await jobs.claim(conn, limit=10, lease_s=60)]

    rounds = await asyncio.gather(*(claim() for _ in range(8)))
    taken = [item for claimed in rounds for item in claimed]
    assert len(taken) == len(set(taken)) == len(made)


async def test_a_lease_that_runs_out_lets_another_take_the_item(pool: asyncpg.Pool) -> None:
    jobs = QueueRepository(JOBS)
    async with pool.acquire() as conn:
        [job] = await add_jobs(conn, 1)
        [first] = await jobs.claim(conn, limit=5, lease_s=0.3)
        assert (first.id, first.attempts) == (job, 1)
        assert await jobs.claim(conn, limit=5, lease_s=60) == []  # leased: nobody else

        retaken: list[int] = []

        async def taken_again() -> bool:
            retaken.extend(lease.attempts for lease in await jobs.claim(conn, limit=5, lease_s=60))
            return bool(retaken)

        await wait_until(taken_again, what="the lease to run out", timeout_s=10)
    assert retaken == [2]


async def test_settles_back_off_then_the_item_goes_dead(pool: asyncpg.Pool) -> None:
    jobs = QueueRepository(JOBS)
    policy = RetryPolicy(schedule_s=(10, 20), jitter=0.2, _random=random.Random(1))
    async with pool.acquire() as conn:
        [job] = await add_jobs(conn, 1)
        waits = []
        for attempt in (1, 2):
            [lease] = await jobs.claim(conn, limit=1, lease_s=60)
            assert lease.attempts == attempt
            settlement = policy.settle(lease.id, lease.attempts, Outcome.RETRY, "HTTP 503")
            await jobs.settle(conn, settlements=[settlement])
            row = await conn.fetchrow(
                """SELECT status, last_error, claimed_until, completed_at,
                          extract(epoch FROM run_at - now())::float8 AS wait_s
                   FROM scheduled_jobs WHERE id = $1""",
                job,
            )
            assert (row["status"], row["last_error"]) == ("pending", "HTTP 503")
            assert row["claimed_until"] is None
            assert row["completed_at"] is None
            waits.append(row["wait_s"])
            assert await jobs.claim(conn, limit=1, lease_s=60) == []  # not due yet
            await conn.execute("UPDATE scheduled_jobs SET run_at = now() WHERE id = $1", job)
        assert 8 <= waits[0] <= 12
        assert 16 <= waits[1] <= 24
        [last] = await jobs.claim(conn, limit=1, lease_s=60)
        assert last.attempts == policy.max_attempts
        await jobs.settle(
            conn, settlements=[policy.settle(last.id, last.attempts, Outcome.RETRY, "HTTP 503")]
        )
        row = await conn.fetchrow(
            "SELECT status, completed_at FROM scheduled_jobs WHERE id = $1", job
        )
        assert row["status"] == JobStatus.DEAD
        assert row["completed_at"] is not None
        assert await jobs.claim(conn, limit=1, lease_s=60) == []


async def test_a_stale_lease_cannot_settle_the_item(pool: asyncpg.Pool) -> None:
    jobs = QueueRepository(JOBS)
    policy = RetryPolicy()
    async with pool.acquire() as conn:
        [job] = await add_jobs(conn, 1)
        [stale] = await jobs.claim(conn, limit=1, lease_s=60)
        await conn.execute("UPDATE scheduled_jobs SET claimed_until = now() WHERE id = $1", job)
        [fresh] = await jobs.claim(conn, limit=1, lease_s=60)
        await jobs.settle(
            conn, settlements=[policy.settle(stale.id, stale.attempts, Outcome.FAILED, "late")]
        )
        assert await conn.fetchval("SELECT status FROM scheduled_jobs WHERE id = $1", job) == (
            "pending"
        )
        await jobs.settle(
            conn, settlements=[policy.settle(fresh.id, fresh.attempts, Outcome.SUCCEEDED, None)]
        )
        assert await conn.fetchval("SELECT status FROM scheduled_jobs WHERE id = $1", job) == (
            "succeeded"
        )


async def test_dead_letters_replay_and_wake_the_workers(
    pool: asyncpg.Pool, migrated_dsn: str
) -> None:
    jobs = QueueRepository(JOBS)
    policy = RetryPolicy(schedule_s=())
    async with listening(migrated_dsn, JOBS.channel) as woken, pool.acquire() as conn:
        dead, done = await add_jobs(conn, 2)
        leases = await jobs.claim(conn, limit=2, lease_s=60)
        outcome = {dead: Outcome.RETRY, done: Outcome.SUCCEEDED}
        await jobs.settle(
            conn,
            settlements=[policy.settle(x.id, x.attempts, outcome[x.id], "boom") for x in leases],
        )
        assert await conn.fetchval("SELECT status FROM scheduled_jobs WHERE id = $1", dead) == (
            "dead"
        )
        woken.clear()
        async with conn.transaction():
            assert await jobs.requeue(conn, statuses={JobStatus.DEAD}) == 1
        await asyncio.wait_for(woken.wait(), timeout=5)
        [again] = await jobs.claim(conn, limit=5, lease_s=60)
        assert (again.id, again.attempts) == (dead, 1)  # a fresh round of attempts
        assert await jobs.requeue(conn, statuses={JobStatus.DEAD}) == 0


async def test_replay_reaches_only_eligible_groups(pool: asyncpg.Pool) -> None:
    deliveries = QueueRepository(DELIVERIES)
    async with pool.acquire() as conn:
        live = await add_endpoint(conn)
        off = await add_endpoint(conn)
        await add_events(conn, 1)
        await conn.execute("UPDATE webhook_deliveries SET status = 'dead'")
        await conn.execute(
            "UPDATE webhook_endpoints SET status = $2 WHERE id = $1",
            off.id,
            EndpointStatus.DISABLED,
        )
        assert await deliveries.requeue(conn, statuses={JobStatus.DEAD}, group_id=off.id) == 0
        assert await deliveries.requeue(conn, statuses={JobStatus.DEAD}) == 1
        [lease] = await deliveries.claim(conn, limit=5, lease_s=60, per_group=8)
        assert lease.group_id == live.id


async def test_pause_persists_and_stops_claims(pool: asyncpg.Pool, migrated_dsn: str) -> None:
    service = QueueService(Database(pool), (DELIVERIES, JOBS))
    jobs = QueueRepository(JOBS)
    async with pool.acquire() as conn:
        await add_jobs(conn, 3)
    assert await service.set_paused(QueueName.SCHEDULER, True, OPERATOR) == [QueueName.SCHEDULER]
    # A new connection (as after a restart) sees the switch; the other queue is untouched.
    async with pool.acquire() as conn:
        assert await jobs.paused(conn)
        assert not await QueueRepository(DELIVERIES).paused(conn)
        assert await jobs.claim(conn, limit=10, lease_s=60) == []
    stats = {s.queue: s for s in await service.stats()}
    assert stats[QueueName.SCHEDULER].paused
    assert stats[QueueName.SCHEDULER].waiting == 3
    assert not stats[QueueName.WEBHOOKS].paused

    async with listening(migrated_dsn, JOBS.channel) as woken:
        assert await service.set_paused(None, False, OPERATOR) == [
            QueueName.WEBHOOKS,
            QueueName.SCHEDULER,
        ]
        await asyncio.wait_for(woken.wait(), timeout=5)  # resuming wakes the workers
    async with pool.acquire() as conn:
        assert len(await jobs.claim(conn, limit=10, lease_s=60)) == 3
        actions = await conn.fetch(
            """SELECT new_values->>'queue' AS queue, new_values->>'action' AS action
               FROM audit_logs WHERE entity_type = 'queue' ORDER BY created_at"""
        )
    assert [(a["queue"], a["action"]) for a in actions] == [
        ("scheduler", "pause"),
        ("webhooks", "resume"),
        ("scheduler", "resume"),
    ]


async def test_each_group_gets_its_room_and_ineligible_groups_none(pool: asyncpg.Pool) -> None:
    deliveries = QueueRepository(DELIVERIES)
    async with pool.acquire() as conn:
        busy = await add_endpoint(conn)
        await add_events(conn, 12)
        claimed = await deliveries.claim(
            conn, limit=50, lease_s=5, per_group=8, in_flight={busy.id: 6}
        )
        assert len(claimed) == 2
        assert {lease.group_id for lease in claimed} == {busy.id}
        more = await deliveries.claim(
            conn, limit=50, lease_s=5, per_group=8, in_flight={busy.id: 8}
        )
        assert more == []
        rest = await deliveries.claim(conn, limit=50, lease_s=5, per_group=8, in_flight={})
        assert len(rest) == 8

        quiet = await add_endpoint(conn)
        off = await add_endpoint(conn)
        await add_events(conn, 5)
        await conn.execute(
            "UPDATE webhook_endpoints SET status = $2 WHERE id = $1",
            off.id,
            EndpointStatus.DISABLED,
        )
        fair = await deliveries.claim(conn, limit=50, lease_s=5, per_group=3)
        per_group: dict[object, int] = {}
        for lease in fair:
            per_group[lease.group_id] = per_group.get(lease.group_id, 0) + 1
        assert per_group == {busy.id: 3, quiet.id: 3}


async def test_stats_count_states_and_clear_takes_only_finished_items(pool: asyncpg.Pool) -> None:
    service = QueueService(Database(pool), (DELIVERIES, JOBS))
    jobs = QueueRepository(JOBS)
    policy = RetryPolicy()
    async with pool.acquire() as conn:
        await add_jobs(conn, 5)
        leases = await jobs.claim(conn, limit=3, lease_s=60)
        outcomes = [Outcome.SUCCEEDED, Outcome.FAILED]
        await jobs.settle(
            conn,
            settlements=[
                policy.settle(lease.id, lease.attempts, outcome, "no")
                for lease, outcome in zip(leases, outcomes, strict=False)
            ],
        )
        await add_jobs(conn, 1)
        await conn.execute(
            "UPDATE scheduled_jobs SET run_at = now() + interval '1 hour' "
            "WHERE status = 'pending' AND claimed_until IS NULL AND payload->>'n' = '0' "
            "AND attempts = 0"
        )
    stats = {s.queue: s for s in await service.stats()}[QueueName.SCHEDULER]
    assert (stats.completed, stats.failed, stats.dead, stats.active) == (1, 1, 0, 1)
    assert stats.waiting + stats.delayed == 3
    assert stats.delayed == 1
    assert stats.completed_last_minute == 1
    assert stats.oldest_waiting_s is not None
    assert stats.oldest_waiting_s >= 0

    assert await service.clear(QueueName.SCHEDULER, ClearableState.COMPLETED, OPERATOR) == 1
    assert await service.clear(QueueName.SCHEDULER, ClearableState.DEAD, OPERATOR) == 0
    async with pool.acquire() as conn:
        left = await conn.fetch("SELECT status FROM scheduled_jobs")
        audited = await conn.fetchval(
            "SELECT count(*) FROM audit_logs WHERE entity_type = 'queue' "
            "AND new_values->>'action' = 'clear'"
        )
    assert sorted(r["status"] for r in left) == ["failed"] + ["pending"] * 4
    assert audited == 2


async def test_a_named_item_can_be_leased_by_its_creator(pool: asyncpg.Pool) -> None:
    jobs = QueueRepository(JOBS)
    async with pool.acquire() as conn, conn.transaction():
        [job] = await add_jobs(conn, 1)
        lease = await jobs.lease(conn, item_id=job, lease_s=60)
        assert (lease.id, lease.attempts, lease.group_id) == (job, 1, None)
        left = await conn.fetchval(
            "SELECT claimed_until - now() FROM scheduled_jobs WHERE id = $1", job
        )
        assert left == timedelta(seconds=60)
