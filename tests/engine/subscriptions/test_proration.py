"""Proration both ways, to the second and to the minor unit: an upgrade mid-period charges the
new price's remaining part less the old price's unused part at once; a downgrade pays the
difference back as a refund through the ledger; without prorations the change waits for the
next period."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from engine.db.database import Database
from engine.errors import InvalidRequest
from engine.plans.models import Price
from engine.plans.states import BillingInterval
from engine.subscriptions.proration import share
from engine.subscriptions.service import SubscriptionChange
from engine.subscriptions.states import BillingReason, InvoiceStatus
from engine.test_clocks.models import TestClock as Clock
from tests.engine.payments.fakes import FakeGateway
from tests.engine.subscriptions.harness import Billed, build

START = datetime(2027, 4, 1, tzinfo=UTC)  # April: 2,592,000 seconds
UPGRADE_AT = datetime(2027, 4, 11, 6, tzinfo=UTC)  # 1,706,400 s left
DOWNGRADE_AT = datetime(2027, 4, 21, 12, tzinfo=UTC)  # 820,800 s left
PRICE = Price(1999, "USD", BillingInterval.MONTH, 1)


@pytest.fixture
async def billed(database: Database) -> Billed:
    return await build(database, gateway=FakeGateway())


async def _monthly(billed: Billed) -> tuple[Clock, UUID]:
    clock = await billed.clocks.create(frozen_time=START, name=None, principal=billed.who)
    customer = await billed.customer(clock)
    created = await billed.subscribe(customer, await billed.card(customer), price=PRICE)
    assert created.status_code == 201, created.body
    return clock, UUID(created.body["id"])


async def _move(billed: Billed, clock: Clock, to: datetime) -> None:
    await billed.clocks.advance(clock.id, frozen_time=to, principal=billed.who)
    await billed.clocks.run_advance(clock.id, billed.billing.run_due)


def test_shares_round_half_up_in_integers() -> None:
    assert share(1, 1, 2) == 1
    assert share(5, 1, 4) == 1
    assert share(1999, 1_706_400, 2_592_000) == 1316  # 1316.008…
    assert share(5997, 1_706_400, 2_592_000) == 3948  # 3948.025
    assert share(5997, 820_800, 2_592_000) == 1899  # 1899.05
    assert share(1999, 820_800, 2_592_000) == 633  # 633.016…


async def test_upgrade_then_downgrade(billed: Billed) -> None:
    clock, sub_id = await _monthly(billed)
    await _move(billed, clock, UPGRADE_AT)
    up = SubscriptionChange(quantity=3, prorate=True)
    await billed.subscriptions.update(sub_id, up, billed.ctx)
    _, invoice = await billed.subscriptions.get(sub_id)
    assert invoice is not None
    assert invoice.billing_reason is BillingReason.SUBSCRIPTION_UPDATE
    assert [(line.amount, line.proration) for line in invoice.lines] == [
        (-1316, True),
        (3948, True),
    ]
    assert (invoice.amount_due, invoice.status) == (2632, InvoiceStatus.PAID)
    assert (invoice.period_start, invoice.period_end) == (
        UPGRADE_AT,
        datetime(2027, 5, 1, tzinfo=UTC),
    )
    await _move(billed, clock, DOWNGRADE_AT)
    down = SubscriptionChange(quantity=1, prorate=True)
    await billed.subscriptions.update(sub_id, down, billed.ctx)
    _, credit = await billed.subscriptions.get(sub_id)
    assert credit is not None
    assert [line.amount for line in credit.lines] == [-1899, 633]
    assert (credit.amount_due, credit.amount_paid, credit.status) == (
        -1266,
        -1266,
        InvoiceStatus.PAID,
    )
    async with billed.db.connection() as conn:
        refunded = await conn.fetchval(
            "SELECT amount FROM transactions WHERE id = $1", credit.payment_ids[0]
        )
        ledger = await conn.fetch(
            """SELECT account, sum(amount) AS total FROM ledger_entries
               WHERE customer_id = (SELECT customer_id FROM subscriptions WHERE id = $1)
               GROUP BY account""",
            sub_id,
        )
    assert refunded == 1266
    totals = {r["account"]: r["total"] for r in ledger}
    assert totals["captured"] == 1999 + 2632
    assert totals["refunded"] == 1266
    # The next period bills the new quantity in full.
    await _move(billed, clock, datetime(2027, 5, 1, 1, tzinfo=UTC))
    _, renewal = await billed.subscriptions.get(sub_id)
    assert renewal is not None
    assert (renewal.amount_due, renewal.status) == (1999, InvoiceStatus.PAID)


async def test_without_prorations_the_change_waits_for_the_next_period(billed: Billed) -> None:
    clock, sub_id = await _monthly(billed)
    await _move(billed, clock, UPGRADE_AT)
    await billed.subscriptions.update(sub_id, SubscriptionChange(quantity=2), billed.ctx)
    assert billed.executed == 1
    await _move(billed, clock, datetime(2027, 5, 1, 1, tzinfo=UTC))
    _, renewal = await billed.subscriptions.get(sub_id)
    assert renewal is not None
    assert (renewal.amount_due, renewal.status) == (2 * 1999, InvoiceStatus.PAID)


async def test_a_new_price_keeps_currency_and_period(billed: Billed) -> None:
    _, sub_id = await _monthly(billed)
    for price, param in (
        (Price(1999, "EUR", BillingInterval.MONTH, 1), "currency"),
        (Price(1999, "USD", BillingInterval.YEAR, 1), "interval"),
        (Price(1999, "USD", BillingInterval.MONTH, 2), "interval_count"),
    ):
        with pytest.raises(InvalidRequest) as refused:
            await billed.subscriptions.update(sub_id, SubscriptionChange(price=price), billed.ctx)
        assert refused.value.param == param
