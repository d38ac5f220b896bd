"""Subscriptions on real time: a `subscription.run` job is queued at each time billing must
look (a minute after creation as a safety net, then each period's end); running it renews;
the overdue sweep renews those whose job was lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from engine.config import Settings
from engine.db.database import Database
from engine.runtime.subscriptions import open_subscriptions
from engine.subscriptions.schedule import RUN_JOB, SWEEP_JOB
from engine.subscriptions.states import InvoiceStatus
from tests.engine.payments.fakes import FakeClock, FakeGateway
from tests.engine.subscriptions.harness import Billed, build

START = datetime(2027, 1, 31, 12, tzinfo=UTC)


@pytest.fixture
async def billed(database: Database) -> Billed:
    return await build(database, gateway=FakeGateway(), wall=FakeClock(START))


async def _subscribe(billed: Billed) -> UUID:
    customer = await billed.customer()
    plan = await billed.plan()
    created = await billed.subscribe(customer, await billed.card(customer), plan_id=plan.id)
    assert created.status_code == 201, created.body
    return UUID(created.body["id"])


async def _jobs(billed: Billed, sub_id: UUID) -> list[datetime]:
    async with billed.db.connection() as conn:
        rows = await conn.fetch(
            """SELECT run_at FROM scheduled_jobs WHERE kind = $1
               AND payload ->> 'subscription_id' = $2 AND status = 'pending' ORDER BY run_at""",
            RUN_JOB,
            str(sub_id),
        )
    return [r["run_at"] for r in rows]


async def test_jobs_are_queued_and_renew(billed: Billed) -> None:
    sub_id = await _subscribe(billed)
    period_end = datetime(2027, 2, 28, 12, tzinfo=UTC)
    assert await _jobs(billed, sub_id) == [START + timedelta(minutes=1), period_end]
    # The safety run finds nothing due.
    billed.wall.advance(timedelta(minutes=1))
    await billed.billing.run(sub_id)
    assert billed.executed == 1
    billed.wall.advance(period_end - billed.wall.now())
    await billed.billing.run(sub_id)
    _, latest = await billed.subscriptions.get(sub_id)
    assert latest is not None
    assert (latest.period_start, latest.status) == (period_end, InvoiceStatus.PAID)
    assert datetime(2027, 3, 31, 12, tzinfo=UTC) in await _jobs(billed, sub_id)


async def test_the_sweep_renews_what_a_lost_job_left(billed: Billed) -> None:
    sub_id = await _subscribe(billed)
    async with billed.db.connection() as conn:
        await conn.execute("DELETE FROM scheduled_jobs")
    billed.wall.advance(timedelta(days=40))
    await billed.billing.run_overdue()
    _, latest = await billed.subscriptions.get(sub_id)
    assert latest is not None
    assert (latest.period_start.day, latest.status) == (28, InvoiceStatus.PAID)


def test_the_scheduler_runs_the_jobs_and_the_sweep(billed: Billed) -> None:
    runtime = open_subscriptions(
        Settings(), billed.db, execute=billed.execute, methods=billed.methods, plans=billed.plans
    )
    assert {RUN_JOB, SWEEP_JOB, "test_clock.advance"} <= set(runtime.handlers())
    assert runtime.recurring(60.0) == {SWEEP_JOB: ({}, 60.0)}
