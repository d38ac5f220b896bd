"""Pause, resume and cancel (now and at period end), and trials, on a test clock: nothing is
charged while paused or after a cancellation, resuming starts and bills a new period now,
`subscription.trial_will_end` comes three days before the trial's end, and every action on a
cancelled subscription is refused (422)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from engine.db.database import Database
from engine.errors import InvalidRequest, StateError
from engine.subscriptions.commands import SubscriptionChange
from engine.subscriptions.states import InvoiceStatus, SubscriptionStatus
from engine.test_clocks.models import TestClock as Clock
from tests.engine.payments.fakes import FakeGateway
from tests.engine.subscriptions.harness import Billed, build

S = SubscriptionStatus
START = datetime(2027, 1, 10, tzinfo=UTC)


@pytest.fixture
async def billed(database: Database) -> Billed:
    return await build(database, gateway=FakeGateway())


async def _start(billed: Billed, trial_days: int = 0) -> tuple[Clock, UUID]:
    clock = await billed.clocks.create(frozen_time=START, name=None, principal=billed.who)
    customer = await billed.customer(clock)
    plan = await billed.plan(trial_days=trial_days)
    created = await billed.subscribe(customer, await billed.card(customer), plan_id=plan.id)
    assert created.status_code == 201, created.body
    return clock, UUID(created.body["id"])


async def _advance(billed: Billed, clock: Clock, to: datetime) -> None:
    await billed.clocks.advance(clock.id, frozen_time=to, principal=billed.who)
    await billed.clocks.run_advance(clock.id, billed.billing.run_due)


async def _invoices(billed: Billed, sub_id: UUID) -> list[tuple[datetime, InvoiceStatus]]:
    found, _ = await billed.subscriptions.invoices(sub_id, limit=100, starting_after=None)
    return sorted((i.period_start, i.status) for i in found)


async def test_pause_charges_nothing_and_resume_bills_a_new_period(billed: Billed) -> None:
    clock, sub_id = await _start(billed)
    await _advance(billed, clock, datetime(2027, 1, 20, tzinfo=UTC))
    paused = await billed.subscriptions.pause(sub_id, resume_at=None, principal=billed.who)
    assert paused.status is S.PAUSED
    charged = billed.executed
    await _advance(billed, clock, datetime(2027, 5, 1, tzinfo=UTC))
    assert billed.executed == charged
    resumed = await billed.subscriptions.resume(sub_id, billed.who)
    assert resumed.status is S.ACTIVE
    assert resumed.current_period_start == datetime(2027, 5, 1, tzinfo=UTC)
    assert resumed.current_period_end == datetime(2027, 6, 1, tzinfo=UTC)
    assert await _invoices(billed, sub_id) == [
        (START, InvoiceStatus.PAID),
        (datetime(2027, 5, 1, tzinfo=UTC), InvoiceStatus.PAID),
    ]
    with pytest.raises(StateError):
        await billed.subscriptions.resume(sub_id, billed.who)


async def test_pause_until_resume_at(billed: Billed) -> None:
    clock, sub_id = await _start(billed)
    with pytest.raises(InvalidRequest) as past:
        await billed.subscriptions.pause(sub_id, resume_at=START, principal=billed.who)
    assert past.value.param == "resume_at"
    back = datetime(2027, 3, 15, tzinfo=UTC)
    await billed.subscriptions.pause(sub_id, resume_at=back, principal=billed.who)
    await _advance(billed, clock, datetime(2027, 3, 20, tzinfo=UTC))
    sub, latest = await billed.subscriptions.get(sub_id)
    assert latest is not None
    assert (sub.status, sub.current_period_start) == (S.ACTIVE, back)
    assert (latest.period_start, latest.status) == (back, InvoiceStatus.PAID)
    assert len(await _invoices(billed, sub_id)) == 2


async def test_cancel_now_and_nothing_after(billed: Billed) -> None:
    clock, sub_id = await _start(billed)
    cancelled = await billed.subscriptions.cancel(sub_id, at_period_end=False, principal=billed.who)
    assert (cancelled.status, cancelled.cancelled_at) == (S.CANCELLED, START)
    charged = billed.executed
    await _advance(billed, clock, datetime(2027, 6, 1, tzinfo=UTC))
    assert billed.executed == charged
    for action in (
        billed.subscriptions.cancel(sub_id, at_period_end=False, principal=billed.who),
        billed.subscriptions.cancel(sub_id, at_period_end=True, principal=billed.who),
        billed.subscriptions.pause(sub_id, resume_at=None, principal=billed.who),
        billed.subscriptions.resume(sub_id, billed.who),
        billed.subscriptions.update(sub_id, SubscriptionChange(quantity=2), billed.ctx),
    ):
        with pytest.raises(StateError) as refused:
            await action
        assert refused.value.code == "subscription_state_invalid"


async def test_cancel_at_period_end_lets_the_period_run_out(billed: Billed) -> None:
    clock, sub_id = await _start(billed)
    marked = await billed.subscriptions.cancel(sub_id, at_period_end=True, principal=billed.who)
    assert (marked.status, marked.cancel_at_period_end) == (S.ACTIVE, True)
    await _advance(billed, clock, datetime(2027, 2, 9, tzinfo=UTC))
    assert (await billed.subscriptions.get(sub_id))[0].status is S.ACTIVE
    await _advance(billed, clock, datetime(2027, 4, 1, tzinfo=UTC))
    sub, _ = await billed.subscriptions.get(sub_id)
    assert (sub.status, sub.cancelled_at) == (S.CANCELLED, datetime(2027, 2, 10, tzinfo=UTC))
    assert await _invoices(billed, sub_id) == [(START, InvoiceStatus.PAID)]
    assert billed.executed == 1


async def test_trial_notice_then_first_charge(billed: Billed) -> None:
    clock, sub_id = await _start(billed, trial_days=14)
    await _advance(billed, clock, START + timedelta(days=11, seconds=-1))
    assert billed.executed == 0
    await _advance(billed, clock, START + timedelta(days=11))
    async with billed.db.connection() as conn:
        notices = await conn.fetchval(
            "SELECT count(*) FROM events WHERE event_type = 'subscription.trial_will_end'"
        )
    assert notices == 1
    assert billed.executed == 0
    await _advance(billed, clock, START + timedelta(days=14, hours=1))
    sub, latest = await billed.subscriptions.get(sub_id)
    assert latest is not None
    assert sub.status is S.ACTIVE
    assert (latest.period_start, latest.status) == (START + timedelta(days=14), InvoiceStatus.PAID)
    assert sub.current_period_end == datetime(2027, 2, 24, tzinfo=UTC)
    assert billed.executed == 1


async def test_a_paused_subscription_marked_to_cancel_is_cancelled_not_resumed(
    billed: Billed,
) -> None:
    clock, sub_id = await _start(billed)
    await billed.subscriptions.pause(
        sub_id, resume_at=datetime(2027, 3, 1, tzinfo=UTC), principal=billed.who
    )
    await billed.subscriptions.cancel(sub_id, at_period_end=True, principal=billed.who)
    await _advance(billed, clock, datetime(2027, 4, 1, tzinfo=UTC))
    sub, _ = await billed.subscriptions.get(sub_id)
    assert (sub.status, sub.cancelled_at) == (S.CANCELLED, datetime(2027, 2, 10, tzinfo=UTC))
    assert await _invoices(billed, sub_id) == [(START, InvoiceStatus.PAID)]
    assert billed.executed == 1


async def test_resuming_by_hand_after_a_marked_period_ended_cancels(billed: Billed) -> None:
    clock, sub_id = await _start(billed)
    await billed.subscriptions.pause(sub_id, resume_at=None, principal=billed.who)
    await billed.subscriptions.cancel(sub_id, at_period_end=True, principal=billed.who)
    # The clock moves past the period's end before any run looked at it.
    await billed.clocks.advance(
        clock.id, frozen_time=datetime(2027, 3, 1, tzinfo=UTC), principal=billed.who
    )
    resumed = await billed.subscriptions.resume(sub_id, billed.who)
    assert (resumed.status, resumed.cancelled_at) == (
        S.CANCELLED,
        datetime(2027, 2, 10, tzinfo=UTC),
    )
    assert await _invoices(billed, sub_id) == [(START, InvoiceStatus.PAID)]
    assert billed.executed == 1


async def test_resuming_within_the_paid_period_continues_it(billed: Billed) -> None:
    # Paid Jan 10 - Feb 10, paused Jan 11, resumed Jan 12: nothing is billed at once, the
    # paid period goes on and the next renews on Feb 10 as before.
    clock, sub_id = await _start(billed)
    await _advance(billed, clock, datetime(2027, 1, 11, tzinfo=UTC))
    await billed.subscriptions.pause(sub_id, resume_at=None, principal=billed.who)
    await _advance(billed, clock, datetime(2027, 1, 12, tzinfo=UTC))
    resumed = await billed.subscriptions.resume(sub_id, billed.who)
    assert resumed.status is S.ACTIVE
    assert (resumed.current_period_start, resumed.current_period_end) == (
        START,
        datetime(2027, 2, 10, tzinfo=UTC),
    )
    assert billed.executed == 1
    await _advance(billed, clock, datetime(2027, 2, 11, tzinfo=UTC))
    assert await _invoices(billed, sub_id) == [
        (START, InvoiceStatus.PAID),
        (datetime(2027, 2, 10, tzinfo=UTC), InvoiceStatus.PAID),
    ]
    assert billed.executed == 2
