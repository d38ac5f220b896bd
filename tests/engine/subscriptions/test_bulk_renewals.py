"""Plain renewals in bulk: a due run renews, charges and settles them together, and leaves
everything else (paused, cancelling at the period's end, dunning) to the one-by-one steps;
charges whose answers are lost after they reached the shard are settled from their payments,
never charged again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from engine.db.database import Database
from engine.payments.commands import Command, CommandResult
from engine.principal import Principal
from engine.subscriptions.charging import Attempt, InvoiceCharger
from engine.subscriptions.models import Invoice, Subscription
from engine.subscriptions.states import InvoiceStatus, SubscriptionStatus
from tests.engine.payments.fakes import FakeGateway
from tests.engine.subscriptions.harness import build

START = datetime(2027, 1, 31, tzinfo=UTC)
RENEWAL = datetime(2027, 2, 28, tzinfo=UTC)
LATER = datetime(2027, 8, 1, tzinfo=UTC)
DECLINING = "4000000000000002"

S = SubscriptionStatus


async def _invoices(db: Database, sub_id: UUID) -> list[tuple[InvoiceStatus, int]]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT status, attempts FROM invoices WHERE subscription_id = $1 ORDER BY created_at",
            sub_id,
        )
    return [(InvoiceStatus(r["status"]), r["attempts"]) for r in rows]


async def test_plain_renewals_go_in_bulk_and_the_others_one_by_one(database: Database) -> None:
    gateway = FakeGateway()
    billed = await build(database, gateway=gateway)
    clock, plain = await billed.on_clock(5, START)
    plan = await billed.plan()
    others = []
    for number in ("4242424242424242", "4242424242424242", DECLINING):
        customer = await billed.customer(clock)
        created = await billed.subscribe(
            customer, await billed.card(customer, number), plan_id=plan.id
        )
        assert created.status_code == 201, created.body
        others.append(UUID(created.body["id"]))
    paused, cancelling, declining = others
    await billed.subscriptions.pause(paused, resume_at=None, principal=billed.who)
    await billed.subscriptions.cancel(cancelling, at_period_end=True, principal=billed.who)
    # Declines from now on (the card was verified and its first invoice paid).
    gateway.declining_cards[DECLINING] = "insufficient_funds"

    await billed.clocks.advance(clock.id, frozen_time=RENEWAL, principal=billed.who)
    await billed.clocks.run_advance(clock.id, billed.billing.run_due)

    for sub_id in plain:
        sub, _ = await billed.subscriptions.get(sub_id)
        assert (sub.status, sub.period_index) == (S.ACTIVE, 1)
        assert sub.next_run_at == datetime(2027, 3, 31, tzinfo=UTC)
        assert await _invoices(database, sub_id) == [(InvoiceStatus.PAID, 1)] * 2
    assert (await billed.subscriptions.get(paused))[0].status is S.PAUSED
    assert await _invoices(database, paused) == [(InvoiceStatus.PAID, 1)]
    assert (await billed.subscriptions.get(cancelling))[0].status is S.CANCELLED
    assert await _invoices(database, cancelling) == [(InvoiceStatus.PAID, 1)]
    sub, _ = await billed.subscriptions.get(declining)
    assert sub.status is S.PAST_DUE
    assert sub.next_run_at == RENEWAL + timedelta(days=1)
    assert await _invoices(database, declining) == [
        (InvoiceStatus.PAID, 1),
        (InvoiceStatus.OPEN, 1),
    ]
    # One charge per paid period (first invoices, the renewals) and the one declined.
    assert len(gateway.calls_to("purchase")) == 8 + 5 + 1
    async with database.connection() as conn:
        # A bulk renewal's invoice is created with its attempt pending and settled: two audit
        # rows, where one by one it takes three (created, attempt begun, settled).
        audited = await conn.fetch(
            """SELECT count(*) AS n FROM audit_logs a JOIN invoices i ON i.id = a.entity_id
               WHERE i.billing_reason = 'subscription_cycle' AND i.subscription_id = ANY($1)
               GROUP BY i.id""",
            plain,
        )
    assert [r["n"] for r in audited] == [2] * len(plain)


async def test_a_pause_after_a_bulk_renewal_began_leaves_that_charge_alone(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = FakeGateway()
    billed = await build(database, gateway=gateway)
    clock, [sub_id] = await billed.on_clock(1, START)
    charge_all = InvoiceCharger.charge_all

    async def pause_first(
        self: InvoiceCharger, begun: Sequence[tuple[Invoice, Subscription]], principal: Principal
    ) -> list[Attempt | BaseException]:
        # The renewal and its attempt committed together; the merchant pauses before the
        # charge reaches the shard. An attempt begun is charged (only the shard can tell
        # whether it already was), and settled without moving the subscription.
        await billed.subscriptions.pause(sub_id, resume_at=None, principal=billed.who)
        return await charge_all(self, begun, principal)

    monkeypatch.setattr(InvoiceCharger, "charge_all", pause_first)
    await billed.clocks.advance(clock.id, frozen_time=RENEWAL, principal=billed.who)
    await billed.clocks.run_advance(clock.id, billed.billing.run_due)
    sub, _ = await billed.subscriptions.get(sub_id)
    assert (sub.status, sub.next_run_at) == (S.PAUSED, None)
    assert await _invoices(database, sub_id) == [(InvoiceStatus.PAID, 1)] * 2
    # Paused, nothing more is charged however far the clock goes.
    await billed.clocks.advance(clock.id, frozen_time=LATER, principal=billed.who)
    await billed.clocks.run_advance(clock.id, billed.billing.run_due)
    assert len(gateway.calls_to("purchase")) == 2


class Crash(Exception):
    """The scheduler dying after the shard charged and before the run settled it."""


async def test_charges_lost_after_reaching_the_shard_are_settled_not_charged_again(
    database: Database,
) -> None:
    gateway = FakeGateway()
    billed = await build(database, gateway=gateway)
    clock, subs = await billed.on_clock(6, START)
    crashes = 0

    async def charge_then_crash(command: Command) -> CommandResult:
        nonlocal crashes
        await billed.execute(command)
        crashes += 1
        raise Crash

    dying = billed.scheduler(charge_then_crash)
    await billed.clocks.advance(clock.id, frozen_time=RENEWAL, principal=billed.who)
    # Every answer is lost after the shard charged: the run takes each pending attempt up
    # again one by one and settles it from its payment, without asking the shard again.
    await dying.run_due(clock.id, RENEWAL)
    assert crashes == len(subs)
    for sub_id in subs:
        assert await _invoices(database, sub_id) == [(InvoiceStatus.PAID, 1)] * 2
    # Nothing is left for another run, and each renewal reached the gateway once.
    executed = billed.executed
    await billed.billing.run_due(clock.id, RENEWAL)
    assert billed.executed == executed
    assert len(gateway.calls_to("purchase")) == 2 * len(subs)
