"""Creating a subscription: the first invoice paid at once through the customer's ledger shard
(active, 201), a decline leaving a failed subscription with a void invoice and the decline shown
(402), a trial charging nothing; refusals before anything is written; a retry under the same
Idempotency-Key meeting the first subscription and charging nothing more."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound, StateError
from engine.payment_methods.models import NewCard
from engine.payments.commands import RequestContext
from engine.plans.models import Price
from engine.plans.states import BillingInterval
from engine.subscriptions.commands import NewSubscription
from engine.subscriptions.states import InvoiceStatus, SubscriptionStatus
from engine.subscriptions.terms import Terms
from tests.engine.payments.fakes import FakeClock, FakeGateway
from tests.engine.subscriptions.harness import Billed, build

DECLINING = "4000000000000002"
START = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)


@pytest.fixture
async def billed(database: Database) -> Billed:
    gateway = FakeGateway(declining_cards={DECLINING: "generic_decline"})
    return await build(database, gateway=gateway, wall=FakeClock(START))


async def _count(db: Database, sql: str, *args: object) -> int:
    async with db.connection() as conn:
        return int(await conn.fetchval(sql, *args))


async def test_first_invoice_paid_at_once(billed: Billed) -> None:
    customer = await billed.customer()
    plan = await billed.plan()
    result = await billed.subscribe(
        customer, await billed.card(customer), plan_id=plan.id, quantity=2
    )
    assert result.status_code == 201, result.body
    body = result.body
    assert body["status"] == "active"
    assert body["current_period_start"] == "2027-01-31T09:30:00Z"
    assert body["current_period_end"] == "2027-02-28T09:30:00Z"
    invoice = body["latest_invoice"]
    assert (invoice["status"], invoice["amount_due"], invoice["amount_paid"]) == (
        "paid",
        3998,
        3998,
    )
    assert invoice["billing_reason"] == "subscription_create"
    [payment] = invoice["payments"]
    async with billed.db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT status, amount, customer_id, metadata FROM transactions WHERE id = $1",
            UUID(payment),
        )
        events = await conn.fetch("SELECT event_type FROM events ORDER BY created_at, id")
    assert (row["status"], row["amount"], row["customer_id"]) == ("succeeded", 3998, customer)
    assert row["metadata"]["subscription_id"] == body["id"]
    assert sorted(
        e["event_type"] for e in events if not e["event_type"].startswith("payment_m")
    ) == [
        "invoice.created",
        "invoice.paid",
        "payment.succeeded",
        "subscription.created",
        "subscription.updated",
    ]


async def test_decline_fails_the_subscription_and_shows_the_decline(billed: Billed) -> None:
    customer = await billed.customer()
    card = NewCard(DECLINING, 12, 2034)
    result = await billed.subscribe(
        customer, card, price=Price(500, "EUR", BillingInterval.WEEK, 1)
    )
    assert result.status_code == 402
    assert (result.body["code"], result.body["decline_code"]) == (
        "card_declined",
        "generic_decline",
    )
    sub = result.body["subscription"]
    assert sub["status"] == "failed"
    assert sub["latest_invoice"]["status"] == "void"
    assert result.body["payment_id"] == sub["latest_invoice"]["payments"][0]
    async with billed.db.connection() as conn:
        updates = await conn.fetch(
            "SELECT payload FROM events WHERE event_type = 'subscription.updated'"
        )
    assert [u["payload"]["status"] for u in updates] == ["failed"]
    stored, _ = await billed.subscriptions.get(UUID(result.body["subscription_id"]))
    assert stored.status is SubscriptionStatus.FAILED
    assert stored.next_run_at is None
    # Nothing is left to bill: running it finds nothing due.
    await billed.billing.run(stored.id)
    assert billed.executed == 1


async def test_trial_charges_nothing_until_it_ends(billed: Billed) -> None:
    customer = await billed.customer()
    plan = await billed.plan(trial_days=14)
    result = await billed.subscribe(customer, await billed.card(customer), plan_id=plan.id)
    assert result.status_code == 201
    assert result.body["status"] == "trialing"
    assert result.body["trial_end"] == "2027-02-14T09:30:00Z"
    assert result.body["latest_invoice"] is None
    assert billed.executed == 0


async def test_refusals_before_anything_is_written(billed: Billed) -> None:
    customer = await billed.customer()
    other = await billed.customer()
    others_card = await billed.card(other)
    plan = await billed.plan()
    with pytest.raises(StateError) as mismatch:
        await billed.subscribe(customer, others_card, plan_id=plan.id)
    assert mismatch.value.code == "payment_method_customer_mismatch"
    with pytest.raises(NotFound) as no_customer:
        await billed.subscribe(uuid4(), others_card, plan_id=plan.id)
    assert no_customer.value.param == "customer_id"
    with pytest.raises(NotFound) as no_plan:
        await billed.subscribe(customer, others_card, plan_id=uuid4())
    assert no_plan.value.param == "plan_id"
    with pytest.raises(NotFound):
        await billed.subscribe(customer, uuid4(), plan_id=plan.id)
    await billed.plans.archive(plan.id, billed.who)
    with pytest.raises(StateError) as archived:
        await billed.subscribe(customer, await billed.card(customer), plan_id=plan.id)
    assert archived.value.code == "plan_archived"
    with pytest.raises(InvalidRequest) as too_much:
        await billed.subscribe(
            customer,
            await billed.card(customer),
            price=Price(50_000_000, "USD", BillingInterval.DAY, 1),
            quantity=2,
        )
    assert too_much.value.param == "quantity"
    assert await _count(billed.db, "SELECT count(*) FROM subscriptions") == 0
    assert billed.executed == 0


async def test_a_retry_under_the_same_key_meets_the_first_subscription(billed: Billed) -> None:
    customer = await billed.customer()
    plan = await billed.plan()
    ctx = RequestContext(billed.api_key, "req-1", "sub-order-7", b"hash-of-the-body")
    request = NewSubscription(customer, NewCard("4242424242424242", 12, 2034), plan_id=plan.id)
    first = await billed.subscriptions.create(request, ctx)
    again = await billed.subscriptions.create(request, ctx)
    assert first.status_code == again.status_code == 201
    assert first.body == again.body
    assert again.replayed
    assert billed.executed == 1
    assert await _count(billed.db, "SELECT count(*) FROM payment_methods") == 1
    assert first.body["latest_invoice"]["status"] == InvoiceStatus.PAID


async def test_the_key_with_another_request_is_refused(billed: Billed) -> None:
    customer = await billed.customer()
    plan = await billed.plan()
    request = NewSubscription(customer, NewCard("4242424242424242", 12, 2034), plan_id=plan.id)
    await billed.subscriptions.create(
        request, RequestContext(billed.api_key, "req-1", "sub-order-8", b"first body")
    )
    other = await billed.subscriptions.create(
        replace(request, quantity=2),
        RequestContext(billed.api_key, "req-2", "sub-order-8", b"second body"),
    )
    assert (other.status_code, other.body["code"]) == (422, "idempotency_key_reused")
    assert billed.executed == 1


async def test_a_retry_finishes_a_first_attempt_cut_short(
    billed: Billed, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = await billed.customer()
    plan = await billed.plan()
    ctx = RequestContext(billed.api_key, "req-1", "sub-order-9", b"hash-of-the-body")
    request = NewSubscription(customer, await billed.card(customer), plan_id=plan.id)

    async def die(invoice_id: UUID, principal: object) -> None:
        raise ConnectionError("the replica died before paying the first invoice")

    with monkeypatch.context() as patched:
        patched.setattr(billed.billing, "run_invoice", die)
        with pytest.raises(ConnectionError):
            await billed.subscriptions.create(request, ctx)
    retried = await billed.subscriptions.create(request, ctx)
    assert retried.status_code == 201
    assert retried.body["status"] == "active"
    assert retried.body["latest_invoice"]["status"] == "paid"
    assert billed.executed == 1
    assert await _count(billed.db, "SELECT count(*) FROM subscriptions") == 1


async def test_the_same_keyed_request_twice_at_once_makes_one_subscription(
    billed: Billed, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both requests find no subscription yet before either writes it.
    both_looked = asyncio.Barrier(2)
    method_of = Terms.method_of

    async def after_both(self: Terms, *args: Any) -> UUID:
        await both_looked.wait()
        return await method_of(self, *args)

    monkeypatch.setattr(Terms, "method_of", after_both)
    customer = await billed.customer()
    method = await billed.card(customer)
    plan = await billed.plan()
    request = NewSubscription(customer, method, plan_id=plan.id)
    ctx = RequestContext(billed.api_key, "dup", f"sub-{uuid4()}", b"same request")
    first, second = await asyncio.gather(
        billed.subscriptions.create(request, ctx), billed.subscriptions.create(request, ctx)
    )
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.body["id"] == second.body["id"]
    assert await _count(billed.db, "SELECT count(*) FROM subscriptions") == 1
    assert await _count(billed.db, "SELECT count(*) FROM transactions") == 1
