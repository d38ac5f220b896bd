"""The generic worker: claims as much as it has room for, runs each item as a task, settles each
with the policy in batches, and keeps one bad item from holding back the rest."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import pytest

from engine.db.database import Database
from engine.queueing.policy import Outcome, RetryPolicy
from engine.queueing.repository import Lease, QueueRepository
from engine.queueing.worker import Done, Worker
from engine.scheduler.queue import JOBS
from engine.scheduler.repository import JobRepository
from tests.engine.queueing.helpers import add_jobs


@dataclass(frozen=True)
class Ran:
    outcome: Outcome
    error: str | None


class Scripted:
    """Runs jobs by their payload's `n`: outcomes as scripted (succeeded by default), an
    optional gate that holds every run, and a job whose side effects always raise."""

    def __init__(self, outcomes: Mapping[int, Outcome] | None = None, poison: int = -1) -> None:
        self.outcomes = dict(outcomes or {})
        self.poison = poison
        self.gate = asyncio.Event()
        self.gate.set()
        self.running = 0
        self.finished: list[int] = []

    async def load(self, conn: asyncpg.Connection, leases: Sequence[Lease]) -> Mapping[UUID, int]:
        jobs = await JobRepository().jobs(conn, job_ids=[lease.id for lease in leases])
        return {job_id: int(job.payload["n"]) for job_id, job in jobs.items()}

    async def run(self, item: int) -> Ran:
        self.running += 1
        try:
            await self.gate.wait()
        finally:
            self.running -= 1
        outcome = self.outcomes.get(item, Outcome.SUCCEEDED)
        return Ran(outcome, None if outcome is Outcome.SUCCEEDED else f"item {item}")

    async def settled(self, conn: asyncpg.Connection, done: Sequence[Done[int, Ran]]) -> None:
        for d in done:
            if d.item == self.poison:
                raise RuntimeError("a bug in one item's side effects")
        self.finished.extend(d.item for d in done)


def _worker(pool: asyncpg.Pool, handler: Scripted, max_in_flight: int = 10) -> Worker[int, Ran]:
    return Worker(
        Database(pool),
        QueueRepository(JOBS),
        handler,
        RetryPolicy(schedule_s=(60,)),
        max_in_flight=max_in_flight,
        lease_s=60,
    )


async def _statuses(pool: asyncpg.Pool) -> dict[int, str]:
    rows = await pool.fetch("SELECT payload->>'n' AS n, status FROM scheduled_jobs")
    return {int(r["n"]): r["status"] for r in rows}


async def test_claims_only_what_there_is_room_for(pool: asyncpg.Pool) -> None:
    handler = Scripted()
    handler.gate.clear()
    worker = _worker(pool, handler, max_in_flight=4)
    async with pool.acquire() as conn:
        await add_jobs(conn, 6)
    assert await worker.pump() == 4
    assert await worker.pump() == 0  # full: nothing more is claimed
    assert worker.in_flight == 4
    handler.gate.set()
    await worker.drain()
    assert worker.wake.is_set()  # finished items make room: the loop is woken
    assert await worker.pump() == 2
    await worker.drain()
    assert set((await _statuses(pool)).values()) == {"succeeded"}


async def test_each_item_settles_by_its_outcome(pool: asyncpg.Pool) -> None:
    handler = Scripted({1: Outcome.RETRY, 2: Outcome.FAILED})
    worker = _worker(pool, handler)
    async with pool.acquire() as conn:
        await add_jobs(conn, 3)
    assert await worker.pump() == 3
    await worker.drain()
    assert await _statuses(pool) == {0: "succeeded", 1: "pending", 2: "failed"}
    assert sorted(handler.finished) == [0, 1, 2]
    errors = await pool.fetch("SELECT payload->>'n' AS n, last_error FROM scheduled_jobs")
    assert {r["n"]: r["last_error"] for r in errors} == {"0": None, "1": "item 1", "2": "item 2"}


async def test_one_bad_item_does_not_hold_back_the_others(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Scripted(poison=3)
    handler.gate.clear()
    worker = _worker(pool, handler)
    async with pool.acquire() as conn:
        await add_jobs(conn, 6)
    assert await worker.pump() == 6
    handler.gate.set()  # all finish together: they settle in shared batches
    with caplog.at_level(logging.ERROR, logger="paygrid.queueing"):
        await worker.drain()
    statuses = await _statuses(pool)
    assert statuses.pop(3) == "pending"  # its lease runs out; then it is tried again
    assert set(statuses.values()) == {"succeeded"}
    assert sorted(handler.finished) == [0, 1, 2, 4, 5]
    assert [r.message for r in caplog.records] == [
        "scheduler: an item failed; it runs again when its lease runs out"
    ]


async def test_run_now_settles_an_item_its_caller_leased(pool: asyncpg.Pool) -> None:
    handler = Scripted({0: Outcome.FAILED})
    worker = _worker(pool, handler)
    async with pool.acquire() as conn, conn.transaction():
        [job] = await add_jobs(conn, 1)
        lease = await worker.queue.lease(conn, item_id=job, lease_s=worker.lease_s)
    ran = await worker.run_now(lease, 0)
    assert ran.outcome is Outcome.FAILED
    assert await _statuses(pool) == {0: "failed"}
