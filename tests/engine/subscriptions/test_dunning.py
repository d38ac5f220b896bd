"""Dunning with the sandbox gateway's declining test cards, on a test clock: a declined renewal
makes the subscription past_due and is retried 1, 3 and 5 days after it fell due; replacing the
payment method retries at once and a success makes it active again; after the last retry it is
cancelled and the invoice uncollectible (or, so configured, left past_due); nothing is charged
after a cancellation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from redis.asyncio import Redis

from engine.db.database import Database
from engine.gateways.sandbox import SandboxGateway
from engine.subscriptions.commands import SubscriptionChange
from engine.subscriptions.settlement import Dunning
from engine.subscriptions.states import InvoiceStatus, SubscriptionStatus
from engine.test_clocks.models import TestClock as Clock
from tests.engine.payments.fakes import FakeGateway, decline
from tests.engine.subscriptions.harness import Billed, build

INSUFFICIENT_FUNDS = "4000000000009995"
GENERIC_DECLINE = "4000000000000002"
START = datetime(2027, 3, 1, tzinfo=UTC)
RENEWAL = datetime(2027, 4, 1, tzinfo=UTC)
JAN_10 = datetime(2027, 1, 10, tzinfo=UTC)


async def _billed(database: Database, redis: Redis, *, cancel: bool = True) -> Billed:
    return await build(database, gateway=SandboxGateway(redis), dunning=Dunning((1, 3, 5), cancel))


async def _declining_subscription(billed: Billed, number: str) -> tuple[Clock, UUID]:
    """A monthly subscription paid at once with a good card, then switched to `number`."""
    clock = await billed.clocks.create(frozen_time=START, name=None, principal=billed.who)
    customer = await billed.customer(clock)
    plan = await billed.plan()
    created = await billed.subscribe(customer, await billed.card(customer), plan_id=plan.id)
    assert created.status_code == 201, created.body
    sub_id = UUID(created.body["id"])
    bad = await billed.card(customer, number)
    await billed.subscriptions.update(sub_id, SubscriptionChange(method=bad), billed.ctx)
    return clock, sub_id


async def _advance(billed: Billed, clock: Clock, to: datetime) -> None:
    await billed.clocks.advance(clock.id, frozen_time=to, principal=billed.who)
    await billed.clocks.run_advance(clock.id, billed.billing.run_due)


async def _events(billed: Billed, sub_id: UUID) -> list[str]:
    async with billed.db.connection() as conn:
        rows = await conn.fetch(
            """SELECT event_type FROM events
               WHERE payload ->> 'subscription_id' = $1 OR object_id = $2
               ORDER BY created_at, event_type""",
            str(sub_id),
            sub_id,
        )
    return [r["event_type"] for r in rows]


async def test_retries_on_schedule_then_cancels(database: Database, redis: Redis) -> None:
    billed = await _billed(database, redis)
    clock, sub_id = await _declining_subscription(billed, INSUFFICIENT_FUNDS)
    await _advance(billed, clock, RENEWAL + timedelta(hours=1))
    sub, invoice = await billed.subscriptions.get(sub_id)
    assert invoice is not None
    assert sub.status is SubscriptionStatus.PAST_DUE
    assert (invoice.status, invoice.attempts) == (InvoiceStatus.OPEN, 1)
    assert invoice.last_decline_code == "insufficient_funds"
    assert invoice.next_attempt_at == RENEWAL + timedelta(days=1)
    for days, attempts in ((1, 2), (3, 3)):
        # Just before the retry nothing happens; at it, one more attempt.
        await _advance(billed, clock, RENEWAL + timedelta(days=days, seconds=-1))
        assert (await billed.subscriptions.get(sub_id))[1].attempts == attempts - 1  # type: ignore[union-attr]
        await _advance(billed, clock, RENEWAL + timedelta(days=days))
        sub, invoice = await billed.subscriptions.get(sub_id)
        assert invoice is not None
        assert (sub.status, invoice.attempts) == (SubscriptionStatus.PAST_DUE, attempts)
    await _advance(billed, clock, RENEWAL + timedelta(days=5))
    sub, invoice = await billed.subscriptions.get(sub_id)
    assert invoice is not None
    assert sub.status is SubscriptionStatus.CANCELLED
    assert (invoice.status, invoice.attempts) == (InvoiceStatus.UNCOLLECTIBLE, 4)
    assert len(invoice.payment_ids) == 4
    charged = billed.executed
    await _advance(billed, clock, RENEWAL + timedelta(days=90))
    assert billed.executed == charged
    events = await _events(billed, sub_id)
    assert events.count("invoice.payment_failed") == 4
    assert events.count("subscription.past_due") == 1
    assert events.count("invoice.uncollectible") == 1
    assert events.count("subscription.cancelled") == 1


async def test_a_new_payment_method_retries_at_once(database: Database, redis: Redis) -> None:
    billed = await _billed(database, redis)
    clock, sub_id = await _declining_subscription(billed, GENERIC_DECLINE)
    await _advance(billed, clock, RENEWAL)
    sub, invoice = await billed.subscriptions.get(sub_id)
    assert sub.status is SubscriptionStatus.PAST_DUE
    good = await billed.card(sub.customer_id)
    updated = await billed.subscriptions.update(sub_id, SubscriptionChange(method=good), billed.ctx)
    assert updated.status is SubscriptionStatus.ACTIVE
    _, paid = await billed.subscriptions.get(sub_id)
    assert paid is not None
    assert paid.id == invoice.id  # type: ignore[union-attr]
    assert (paid.status, paid.attempts) == (InvoiceStatus.PAID, 2)
    # The next period renews as usual, and the retry days scheduled before change nothing.
    await _advance(billed, clock, datetime(2027, 5, 1, 1, tzinfo=UTC))
    sub, latest = await billed.subscriptions.get(sub_id)
    assert latest is not None
    assert (sub.status, latest.status) == (SubscriptionStatus.ACTIVE, InvoiceStatus.PAID)
    assert latest.period_start == datetime(2027, 5, 1, tzinfo=UTC)


async def test_left_past_due_after_the_last_retry(database: Database, redis: Redis) -> None:
    billed = await _billed(database, redis, cancel=False)
    clock, sub_id = await _declining_subscription(billed, GENERIC_DECLINE)
    await _advance(billed, clock, RENEWAL + timedelta(days=6))
    sub, invoice = await billed.subscriptions.get(sub_id)
    assert invoice is not None
    assert sub.status is SubscriptionStatus.PAST_DUE
    assert (invoice.status, invoice.attempts) == (InvoiceStatus.UNCOLLECTIBLE, 4)
    # Still renewing: the next period is invoiced (and declined) on its date.
    await _advance(billed, clock, datetime(2027, 5, 1, 1, tzinfo=UTC))
    _, latest = await billed.subscriptions.get(sub_id)
    assert latest is not None
    assert latest.period_start == datetime(2027, 5, 1, tzinfo=UTC)
    assert (latest.status, latest.attempts) == (InvoiceStatus.OPEN, 1)


async def test_a_detached_method_is_never_charged(database: Database, redis: Redis) -> None:
    billed = await _billed(database, redis)
    clock = await billed.clocks.create(frozen_time=START, name=None, principal=billed.who)
    customer = await billed.customer(clock)
    plan = await billed.plan()
    method = await billed.card(customer)
    created = await billed.subscribe(customer, method, plan_id=plan.id)
    sub_id = UUID(created.body["id"])
    await billed.methods.detach(method, billed.who)
    charged = billed.executed
    await _advance(billed, clock, RENEWAL + timedelta(hours=1))
    sub, invoice = await billed.subscriptions.get(sub_id)
    assert invoice is not None
    assert sub.status is SubscriptionStatus.PAST_DUE
    assert (invoice.attempts, invoice.last_decline_code) == (1, "payment_method_detached")
    assert billed.executed == charged


async def _dunned(database: Database, cancel: bool) -> tuple[Billed, FakeGateway, Clock, UUID]:
    gateway = FakeGateway()
    billed = await build(database, gateway=gateway, dunning=Dunning((1, 3, 40), cancel))
    clock = await billed.clocks.create(frozen_time=JAN_10, name=None, principal=billed.who)
    customer = await billed.customer(clock)
    plan = await billed.plan()
    created = await billed.subscribe(customer, await billed.card(customer), plan_id=plan.id)
    return billed, gateway, clock, UUID(created.body["id"])


async def _to(billed: Billed, clock: Clock, when: datetime) -> None:
    await billed.clocks.advance(clock.id, frozen_time=when, principal=billed.who)
    await billed.clocks.run_advance(clock.id, billed.billing.run_due)


async def test_a_late_retry_does_not_delay_the_next_renewal(database: Database) -> None:
    billed, gateway, clock, sub_id = await _dunned(database, cancel=True)
    # The Feb 10 renewal and its first two retries are declined; the last retry is Mar 22.
    gateway.script(*(decline("card_declined") for _ in range(3)))
    await _to(billed, clock, datetime(2027, 3, 11, tzinfo=UTC))
    found, _ = await billed.subscriptions.invoices(sub_id, limit=10, starting_after=None)
    periods = sorted((i.period_start, i.status) for i in found)
    assert periods == [
        (JAN_10, InvoiceStatus.PAID),
        (datetime(2027, 2, 10, tzinfo=UTC), InvoiceStatus.OPEN),
        (datetime(2027, 3, 10, tzinfo=UTC), InvoiceStatus.PAID),
    ]
    # One invoice is still open: the subscription stays past_due until it is paid.
    sub, _ = await billed.subscriptions.get(sub_id)
    assert sub.status is SubscriptionStatus.PAST_DUE
    await _to(billed, clock, datetime(2027, 3, 23, tzinfo=UTC))
    sub, _ = await billed.subscriptions.get(sub_id)
    assert sub.status is SubscriptionStatus.ACTIVE


async def test_cancelling_after_the_last_retry_voids_other_open_invoices(
    database: Database,
) -> None:
    billed, gateway, clock, sub_id = await _dunned(database, cancel=True)
    gateway.script(*(decline("card_declined") for _ in range(20)))
    await _to(billed, clock, datetime(2027, 3, 11, tzinfo=UTC))
    await _to(billed, clock, datetime(2027, 3, 25, tzinfo=UTC))
    sub, _ = await billed.subscriptions.get(sub_id)
    assert sub.status is SubscriptionStatus.CANCELLED
    found, _ = await billed.subscriptions.invoices(sub_id, limit=10, starting_after=None)
    statuses = sorted((i.period_start, i.status) for i in found)
    assert statuses == [
        (JAN_10, InvoiceStatus.PAID),
        (datetime(2027, 2, 10, tzinfo=UTC), InvoiceStatus.UNCOLLECTIBLE),
        (datetime(2027, 3, 10, tzinfo=UTC), InvoiceStatus.VOID),
    ]
