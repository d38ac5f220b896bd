"""The database holds subscriptions and invoices to their state machines on its own: a writer
that bypasses the repository still cannot revive a cancelled subscription, reopen or reprice
a paid invoice, or change what an invoice bills."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import pytest

from engine.db.database import Database
from tests.engine.payments.fakes import FakeGateway
from tests.engine.subscriptions.harness import build


async def _paid_subscription(database: Database) -> tuple[UUID, UUID]:
    billed = await build(database, gateway=FakeGateway())
    customer = await billed.customer()
    plan = await billed.plan()
    created = await billed.subscribe(customer, await billed.card(customer), plan_id=plan.id)
    assert created.status_code == 201, created.body
    return UUID(created.body["id"]), UUID(created.body["latest_invoice"]["id"])


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE invoices SET status = 'open', amount_paid = 0, paid_at = NULL WHERE id = $1",
        "UPDATE invoices SET status = 'void', amount_paid = 0, paid_at = NULL WHERE id = $1",
        "UPDATE invoices SET amount_due = 1, amount_paid = 1 WHERE id = $1",
        "UPDATE invoices SET lines = '[]'::jsonb WHERE id = $1",
        "UPDATE invoices SET payment_ids = payment_ids || gen_random_uuid() WHERE id = $1",
    ],
)
async def test_a_paid_invoice_is_final(database: Database, sql: str) -> None:
    _, invoice_id = await _paid_subscription(database)
    async with database.connection() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(sql, invoice_id)


@pytest.mark.parametrize(
    ("now", "then"),
    [("active", "incomplete"), ("active", "trialing"), ("active", "failed")],
)
async def test_illegal_subscription_moves_are_refused(
    database: Database, now: str, then: str
) -> None:
    sub_id, _ = await _paid_subscription(database)
    async with database.connection() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE subscriptions SET status = $2, next_run_at = NULL WHERE id = $1",
                sub_id,
                then,
            )


async def test_a_cancelled_subscription_stays_cancelled(database: Database) -> None:
    sub_id, _ = await _paid_subscription(database)
    async with database.connection() as conn:
        await conn.execute(
            """UPDATE subscriptions SET status = 'cancelled', cancelled_at = now(),
                   next_run_at = NULL WHERE id = $1""",
            sub_id,
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE subscriptions SET status = 'active', cancelled_at = NULL WHERE id = $1",
                sub_id,
            )
