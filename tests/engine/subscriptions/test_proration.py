"""Proration both ways, to the second and to the minor unit: an upgrade mid-period charges the
new price's remaining part less the old price's unused part at once; a downgrade pays the
difference back as a refund through the ledger; without prorations the change waits for the
next period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from engine.db.database import Database
from engine.errors import CardDeclined, InvalidRequest, StateError
from engine.payments.commands import Command, CommandResult, RefundPayment, RequestContext
from engine.plans.models import Price
from engine.plans.states import BillingInterval
from engine.principal import Principal
from engine.subscriptions.billing import Billing
from engine.subscriptions.commands import SubscriptionChange
from engine.subscriptions.proration import share
from engine.subscriptions.settlement import Dunning
from engine.subscriptions.states import BillingReason, InvoiceStatus, SubscriptionStatus
from engine.subscriptions.terms import Terms
from engine.test_clocks.clock import BillingClock
from engine.test_clocks.models import TestClock as Clock
from tests.engine.payments.fakes import FakeGateway, decline
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


async def test_a_change_for_the_next_period_is_not_prorated_as_paid(billed: Billed) -> None:
    # Quantity 3 from the next period; a prorated change to 2 later in the period prorates
    # from the quantity paid for (1), not from the 3 nobody paid for.
    clock, sub_id = await _monthly(billed)
    await _move(billed, clock, UPGRADE_AT)
    later = await billed.subscriptions.update(sub_id, SubscriptionChange(quantity=3), billed.ctx)
    assert later.quantity == 1
    assert later.pending_quantity == 3
    await _move(billed, clock, DOWNGRADE_AT)
    now = SubscriptionChange(quantity=2, prorate=True)
    changed = await billed.subscriptions.update(sub_id, now, billed.ctx)
    assert (changed.quantity, changed.pending_quantity) == (2, None)
    _, invoice = await billed.subscriptions.get(sub_id)
    assert invoice is not None
    assert [line.amount for line in invoice.lines] == [-633, 1266]
    assert (invoice.amount_due, invoice.status) == (633, InvoiceStatus.PAID)


async def test_a_credit_beyond_the_last_payment_is_refunded_from_the_periods_payments(
    billed: Billed,
) -> None:
    clock, sub_id = await _monthly(billed)
    await _move(billed, clock, DOWNGRADE_AT)
    up = SubscriptionChange(quantity=2, prorate=True)
    await billed.subscriptions.update(sub_id, up, billed.ctx)
    _, upgrade = await billed.subscriptions.get(sub_id)
    assert upgrade is not None
    assert upgrade.amount_due == 633
    # A cheaper price: the credit (1266 - 316 = 950) is more than the upgrade's 633.
    cheaper = Price(999, "USD", BillingInterval.MONTH, 1)
    down = SubscriptionChange(quantity=1, price=cheaper, prorate=True)
    changed = await billed.subscriptions.update(sub_id, down, billed.ctx)
    assert (changed.price.amount, changed.quantity) == (999, 1)
    _, credit = await billed.subscriptions.get(sub_id)
    assert credit is not None
    assert (credit.amount_due, credit.status) == (-950, InvoiceStatus.PAID)
    assert credit.payment_ids
    async with billed.db.connection() as conn:
        refunded = await conn.fetchval(
            "SELECT sum(amount) FROM transactions WHERE id = ANY($1::uuid[])",
            credit.payment_ids,
        )
    assert refunded == 950


async def test_a_credit_cut_short_is_paid_back_and_blocks_prorations_meanwhile(
    billed: Billed, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, sub_id = await _monthly(billed)
    await _move(billed, clock, UPGRADE_AT)
    await billed.subscriptions.update(
        sub_id, SubscriptionChange(quantity=3, prorate=True), billed.ctx
    )

    async def crash(self: Billing, invoice_id: UUID, principal: Principal) -> None:
        raise RuntimeError("the replica died before the refund")

    with monkeypatch.context() as patched:
        patched.setattr(Billing, "credit", crash)
        with pytest.raises(RuntimeError):
            await billed.subscriptions.update(
                sub_id, SubscriptionChange(quantity=1, prorate=True), billed.ctx
            )
    _, credit = await billed.subscriptions.get(sub_id)
    assert credit is not None
    assert (credit.amount_due, credit.status) == (-2632, InvoiceStatus.OPEN)
    with pytest.raises(StateError) as refused:
        await billed.subscriptions.update(
            sub_id, SubscriptionChange(quantity=2, prorate=True), billed.ctx
        )
    assert refused.value.code == "subscription_period_unpaid"
    # The next run pays the credit back.
    await billed.billing.run(sub_id)
    paid = await billed.subscriptions.invoice(credit.id)
    assert (paid.status, paid.amount_paid) == (InvoiceStatus.PAID, -2632)


async def test_concurrent_changes_keep_each_others_fields(
    billed: Billed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A price change reads the subscription, and a quantity change commits before it
    # locks it: the price change must not write back the quantity it read.
    _, sub_id = await _monthly(billed)
    price_of = Terms.price_of
    raced = False

    async def racing(self: Terms, conn: Any, request: Any) -> Any:
        nonlocal raced
        if not raced:
            raced = True
            await billed.subscriptions.update(sub_id, SubscriptionChange(quantity=3), billed.ctx)
        return await price_of(self, conn, request)

    monkeypatch.setattr(Terms, "price_of", racing)
    cheaper = Price(999, "USD", BillingInterval.MONTH, 1)
    done = await billed.subscriptions.update(sub_id, SubscriptionChange(price=cheaper), billed.ctx)
    effective = (
        done.pending_amount or done.price.amount,
        done.pending_quantity or done.quantity,
    )
    assert effective == (999, 3)


async def test_a_declined_upgrade_is_refused_and_never_dunned(billed: Billed) -> None:
    clock, sub_id = await _monthly(billed)
    await _move(billed, clock, UPGRADE_AT)
    assert isinstance(billed.gateway, FakeGateway)
    billed.gateway.script(decline("insufficient_funds"))
    with pytest.raises(CardDeclined) as refused:
        await billed.subscriptions.update(
            sub_id, SubscriptionChange(quantity=3, prorate=True), billed.ctx
        )
    assert refused.value.decline_code == "insufficient_funds"
    sub, invoice = await billed.subscriptions.get(sub_id)
    assert (sub.status, sub.quantity) == (SubscriptionStatus.ACTIVE, 1)
    assert invoice is not None
    assert (invoice.billing_reason, invoice.status) == (
        BillingReason.SUBSCRIPTION_UPDATE,
        InvoiceStatus.VOID,
    )
    assert invoice.next_attempt_at is None
    # Nothing is retried; the next period renews at the quantity paid for.
    await _move(billed, clock, datetime(2027, 5, 1, 1, tzinfo=UTC))
    sub, renewal = await billed.subscriptions.get(sub_id)
    assert sub.status is SubscriptionStatus.ACTIVE
    assert renewal is not None
    assert (renewal.amount_due, renewal.status) == (1999, InvoiceStatus.PAID)


async def test_a_credit_refunded_before_a_crash_is_not_refunded_again(
    billed: Billed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The refund goes through, the run dies before settling the credit, and the run that
    # takes it up comes after the refund's idempotency key expired.
    clock, sub_id = await _monthly(billed)
    await _move(billed, clock, UPGRADE_AT)
    await billed.subscriptions.update(
        sub_id, SubscriptionChange(quantity=3, prorate=True), billed.ctx
    )
    credit_back = Billing.credit

    async def later(self: Billing, invoice_id: UUID, principal: Principal) -> None:
        return None

    with monkeypatch.context() as patched:
        patched.setattr(Billing, "credit", later)
        await billed.subscriptions.update(
            sub_id, SubscriptionChange(quantity=1, prorate=True), billed.ctx
        )
    _, credit = await billed.subscriptions.get(sub_id)
    assert credit is not None

    async def refund_then_crash(command: Command) -> CommandResult:
        await billed.execute(command)
        raise RuntimeError("the scheduler died after the refund")

    dying = Billing(
        billed.db,
        execute=refund_then_crash,
        open_saved=billed.methods.charge_source,
        clock=BillingClock(billed.wall.now),
        dunning=Dunning((1, 3, 5)),
    )
    with pytest.raises(RuntimeError):
        await credit_back(dying, credit.id, billed.who)
    async with billed.db.connection() as conn:
        await conn.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 hour'")
    await billed.billing.run(sub_id)
    paid = await billed.subscriptions.invoice(credit.id)
    assert (paid.status, paid.amount_paid) == (InvoiceStatus.PAID, -2632)
    async with billed.db.connection() as conn:
        refunded = await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM refunds")
    assert refunded == 2632


async def test_a_credit_that_cannot_be_paid_back_does_not_stop_renewals(
    billed: Billed, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, sub_id = await _monthly(billed)
    await _move(billed, clock, UPGRADE_AT)
    await billed.subscriptions.update(
        sub_id, SubscriptionChange(quantity=3, prorate=True), billed.ctx
    )

    async def later(self: Billing, invoice_id: UUID, principal: Principal) -> None:
        return None

    with monkeypatch.context() as patched:
        patched.setattr(Billing, "credit", later)
        await billed.subscriptions.update(
            sub_id, SubscriptionChange(quantity=1, prorate=True), billed.ctx
        )
    # The merchant refunds the period's payments in full some other way meanwhile.
    found, _ = await billed.subscriptions.invoices(sub_id, limit=10, starting_after=None)
    sub, _ = await billed.subscriptions.get(sub_id)
    for invoice in found:
        if invoice.status is InvoiceStatus.PAID and invoice.amount_due > 0:
            refund = RefundPayment(
                RequestContext(billed.api_key, "merchant"), invoice.payment_ids[-1], sub.customer_id
            )
            assert (await billed.execute(refund)).status_code == 200
    await _move(billed, clock, datetime(2027, 5, 1, 1, tzinfo=UTC))
    _, renewal = await billed.subscriptions.get(sub_id)
    assert renewal is not None
    assert (renewal.period_start, renewal.status) == (
        datetime(2027, 5, 1, tzinfo=UTC),
        InvoiceStatus.PAID,
    )
