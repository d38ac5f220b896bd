"""A year of monthly billing for 200 subscriptions on a test clock, advanced month by month
through the advance job's own code: exactly 12 paid invoices each, on the calendar's dates
(anchored on Jan 31: Feb 28, Mar 31, Apr 30, …), every cent through the ledger (entries equal
the invoices), one `invoice.paid` event per invoice, and one gateway charge per invoice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from engine.db.database import Database
from engine.test_clocks.states import TestClockStatus as ClockStatus
from tests.engine.payments.fakes import FakeGateway
from tests.engine.subscriptions.harness import Billed, build

SUBSCRIPTIONS = 200
START = datetime(2027, 1, 31, 12, tzinfo=UTC)
EXPECTED_STARTS = [
    datetime(2027, month, day, 12, tzinfo=UTC)
    for month, day in [
        (1, 31), (2, 28), (3, 31), (4, 30), (5, 31), (6, 30),
        (7, 31), (8, 31), (9, 30), (10, 31), (11, 30), (12, 31),
    ]
]  # fmt: skip


async def _subscribe_all(billed: Billed, count: int) -> None:
    clock = await billed.clocks.create(frozen_time=START, name="year", principal=billed.who)
    plan = await billed.plan()
    gate = asyncio.Semaphore(8)

    async def one() -> None:
        async with gate:
            customer = await billed.customer(clock)
            result = await billed.subscribe(customer, await billed.card(customer), plan_id=plan.id)
            assert result.status_code == 201, result.body

    await asyncio.gather(*(one() for _ in range(count)))
    # Month by month to a moment before the 13th period starts (2028-01-31).
    for month in range(1, 13):
        target = START + timedelta(days=31 * month) if month < 12 else START + timedelta(days=364)
        await billed.clocks.advance(clock.id, frozen_time=target, principal=billed.who)
        await billed.clocks.run_advance(clock.id, billed.billing.run_due)
        assert (await billed.clocks.get(clock.id)).status is ClockStatus.READY


async def test_a_year_of_monthly_billing(database: Database) -> None:
    gateway = FakeGateway()
    billed = await build(database, gateway=gateway)
    await _subscribe_all(billed, SUBSCRIPTIONS)
    async with database.connection() as conn:
        per_subscription = await conn.fetch(
            """SELECT subscription_id, array_agg(period_start ORDER BY period_start) AS starts,
                      bool_and(status = 'paid') AS all_paid, sum(amount_paid) AS paid
               FROM invoices GROUP BY subscription_id"""
        )
        ledger = await conn.fetch(
            """SELECT customer_id, sum(amount) AS captured FROM ledger_entries
               WHERE account = 'captured' GROUP BY customer_id"""
        )
        invoiced = await conn.fetch(
            "SELECT customer_id, sum(amount_paid) AS paid FROM invoices GROUP BY customer_id"
        )
        paid_events = await conn.fetch(
            """SELECT object_id, count(*) AS n FROM events WHERE event_type = 'invoice.paid'
               GROUP BY object_id"""
        )
        invoices = await conn.fetchval("SELECT count(*) FROM invoices")
        statuses = await conn.fetch("SELECT DISTINCT status FROM subscriptions")
    assert len(per_subscription) == SUBSCRIPTIONS
    for row in per_subscription:
        assert row["starts"] == EXPECTED_STARTS
        assert row["all_paid"]
        assert row["paid"] == 12 * 1999
    assert {r["customer_id"]: r["captured"] for r in ledger} == {
        r["customer_id"]: r["paid"] for r in invoiced
    }
    assert invoices == 12 * SUBSCRIPTIONS
    assert len(paid_events) == invoices
    assert {r["n"] for r in paid_events} == {1}
    assert len(gateway.calls_to("purchase")) == invoices
    assert [r["status"] for r in statuses] == ["active"]
