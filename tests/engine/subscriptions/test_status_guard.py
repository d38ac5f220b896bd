"""Charging follows the subscription's status: a pause or cancel committed while a run was
deciding stops the charge, a decline on a cancelled subscription leaves nothing open to retry,
and an attempt left pending on a subscription that was cancelled meanwhile is still settled."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from engine.db.database import Database
from engine.payments.commands import Command, CommandResult
from engine.principal import Principal
from engine.subscriptions.billing import Billing
from engine.subscriptions.charging import Attempt, InvoiceCharger
from engine.subscriptions.settlement import Dunning
from engine.subscriptions.states import InvoiceStatus, SubscriptionStatus
from engine.test_clocks.clock import BillingClock
from engine.test_clocks.models import TestClock as Clock
from tests.engine.payments.fakes import FakeGateway, decline
from tests.engine.subscriptions.harness import Billed, build

S = SubscriptionStatus
START = datetime(2027, 1, 10, tzinfo=UTC)
RENEWAL = datetime(2027, 2, 10, tzinfo=UTC)


class Crash(Exception):
    pass


@pytest.fixture
async def gateway() -> FakeGateway:
    return FakeGateway()


async def _start(billed: Billed) -> tuple[Clock, UUID]:
    clock = await billed.clocks.create(frozen_time=START, name=None, principal=billed.who)
    customer = await billed.customer(clock)
    plan = await billed.plan()
    created = await billed.subscribe(customer, await billed.card(customer), plan_id=plan.id)
    assert created.status_code == 201, created.body
    await billed.clocks.advance(clock.id, frozen_time=RENEWAL, principal=billed.who)
    return clock, UUID(created.body["id"])


async def _open_invoices(database: Database, sub_id: UUID) -> list[tuple[str, bool, object]]:
    async with database.connection() as conn:
        rows = await conn.fetch(
            """SELECT status, attempt_pending, next_attempt_at FROM invoices
               WHERE subscription_id = $1 AND status = 'open'""",
            sub_id,
        )
    return [(r["status"], r["attempt_pending"], r["next_attempt_at"]) for r in rows]


async def test_a_pause_committed_before_the_charge_stops_it(
    database: Database, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    billed = await build(database, gateway=gateway)
    _, sub_id = await _start(billed)
    attempt = InvoiceCharger.attempt

    async def pause_first(
        self: InvoiceCharger, invoice_id: UUID, principal: Principal
    ) -> Attempt | None:
        # The renewal was decided; the merchant pauses before its charge begins.
        await billed.subscriptions.pause(sub_id, resume_at=None, principal=billed.who)
        return await attempt(self, invoice_id, principal)

    monkeypatch.setattr(InvoiceCharger, "attempt", pause_first)
    # One by one (a renewal job): the renewal is decided in one transaction and its attempt
    # begun in the next, so a pause can commit between them. (A bulk renewal does both in
    # one transaction: see test_bulk_renewals.py.)
    await billed.billing.run(sub_id)
    assert len(gateway.calls_to("purchase")) == 1
    sub, latest = await billed.subscriptions.get(sub_id)
    assert sub.status is S.PAUSED
    assert latest is not None
    assert latest.status is InvoiceStatus.VOID


async def test_a_decline_after_cancel_leaves_nothing_to_retry(
    database: Database, gateway: FakeGateway
) -> None:
    billed = await build(database, gateway=gateway)
    clock, sub_id = await _start(billed)

    async def cancel_then_decline(command: Command) -> CommandResult:
        await billed.subscriptions.cancel(sub_id, at_period_end=False, principal=billed.who)
        gateway.script(decline("card_declined"))
        return await billed.execute(command)

    other = Billing(
        database,
        execute=cancel_then_decline,
        open_saved=billed.methods.charge_source,
        clock=BillingClock(billed.wall.now),
        dunning=Dunning((1, 3, 5)),
    )
    await billed.clocks.run_advance(clock.id, other.run_due)
    sub, latest = await billed.subscriptions.get(sub_id)
    assert sub.status is S.CANCELLED
    assert await _open_invoices(database, sub_id) == []
    assert latest is not None
    assert latest.status is InvoiceStatus.VOID
    assert latest.next_attempt_at is None


async def test_a_pending_attempt_on_a_cancelled_subscription_is_settled(
    database: Database, gateway: FakeGateway
) -> None:
    billed = await build(database, gateway=gateway)
    clock, sub_id = await _start(billed)

    async def charge_then_crash(command: Command) -> CommandResult:
        await billed.execute(command)
        raise Crash

    dying = Billing(
        database,
        execute=charge_then_crash,
        open_saved=billed.methods.charge_source,
        clock=BillingClock(billed.wall.now),
        dunning=Dunning((1, 3, 5)),
    )
    with pytest.raises(Crash):
        await dying.run(sub_id)
    await billed.subscriptions.cancel(sub_id, at_period_end=False, principal=billed.who)
    assert [p for _, p, _ in await _open_invoices(database, sub_id)] == [True]
    await billed.billing.run_due(clock.id, RENEWAL)
    assert await _open_invoices(database, sub_id) == []
    _, latest = await billed.subscriptions.get(sub_id)
    assert latest is not None
    assert latest.status is InvoiceStatus.PAID
    assert len(gateway.calls_to("purchase")) == 2


async def test_a_renewal_left_open_by_a_crash_is_not_billed_after_the_pause(
    database: Database, gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    billed = await build(database, gateway=gateway)
    clock, sub_id = await _start(billed)

    async def crash(self: InvoiceCharger, invoice_id: UUID, principal: Principal) -> None:
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(InvoiceCharger, "attempt", crash)
        with pytest.raises(Crash):
            await billed.billing.run(sub_id)

    # The Feb 10 renewal is invoiced, its charge never began; then the merchant pauses.
    async def nothing_more(clock_id: UUID, now: datetime) -> None:
        return None

    await billed.clocks.run_advance(clock.id, nothing_more)
    await billed.subscriptions.pause(sub_id, resume_at=None, principal=billed.who)
    await billed.clocks.advance(
        clock.id, frozen_time=datetime(2027, 5, 1, tzinfo=UTC), principal=billed.who
    )
    await billed.clocks.run_advance(clock.id, billed.billing.run_due)
    resumed = await billed.subscriptions.resume(sub_id, billed.who)
    assert resumed.status is S.ACTIVE
    found, _ = await billed.subscriptions.invoices(sub_id, limit=10, starting_after=None)
    assert sorted((i.period_start, i.status) for i in found) == [
        (START, InvoiceStatus.PAID),
        (RENEWAL, InvoiceStatus.VOID),
        (datetime(2027, 5, 1, tzinfo=UTC), InvoiceStatus.PAID),
    ]
    assert len(gateway.calls_to("purchase")) == 2
