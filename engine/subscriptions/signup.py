"""Creating a subscription: paying its first invoice at once, or starting its trial.

Creating never leaves a half-made subscription behind: the subscription and its first invoice
are written together (`incomplete`), the invoice is paid through the customer's ledger shard
(`engine/subscriptions/billing.py`), and the outcome moves it to `active` or `failed` (the
decline shown, 402). Should the process die in between, the `subscription.run` job queued with
it settles the same attempt under the same idempotency key. With an Idempotency-Key the
subscription's id derives from the key and the request and the key is held in the idempotency
records like a payment's: a retry meets the first attempt's subscription (settling its first
payment under the same charge key if it was cut short) and a finished one is replayed; the key
with another request is 422.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID, uuid4, uuid5

import asyncpg

from engine.customers.repository import CustomerRepository
from engine.db.database import Database
from engine.errors import CardDeclined
from engine.events.outbox import Outbox
from engine.idempotency.repository import Answer, Claim, IdempotencyRepository
from engine.payments.commands import CommandResult, RequestContext
from engine.payments.results import held_result
from engine.plans.models import Price
from engine.subscriptions.billing import Billing
from engine.subscriptions.commands import NewSubscription
from engine.subscriptions.invoicing import invoice_event, period_invoice, subscription_event
from engine.subscriptions.models import Subscription
from engine.subscriptions.reads import SubscriptionReads
from engine.subscriptions.states import BillingReason, SubscriptionStatus
from engine.subscriptions.terms import Terms

S = SubscriptionStatus
_SUBSCRIPTION_NAMESPACE = UUID("0c7e51a4-8f0b-4a39-bf61-2f4d2b1c9e37")
# How long a created subscription waits before its safety run settles an unsettled first
# payment (a process that died mid-charge).
_SETTLE_AFTER = timedelta(minutes=1)


class Signup:
    def __init__(
        self,
        db: Database,
        *,
        billing: Billing,
        terms: Terms,
        reads: SubscriptionReads,
        idempotency_ttl_h: int,
    ) -> None:
        self._db = db
        self._billing = billing
        self._terms = terms
        self._reads = reads
        self._idempotency_ttl_h = idempotency_ttl_h
        self._idempotency = IdempotencyRepository()
        self._subs = billing.subscriptions
        self._invoices = billing.invoices
        self._customers = CustomerRepository()
        self._outbox = Outbox()

    async def create(self, request: NewSubscription, ctx: RequestContext) -> CommandResult:
        """Create the subscription and pay its first invoice now (or start its trial): 201
        with the subscription, or 402 with the decline and the `failed` subscription."""
        principal = ctx.principal
        sub_id = uuid4()
        key = ctx.idempotency_key
        if key is not None:
            sub_id = uuid5(
                _SUBSCRIPTION_NAMESPACE, f"{ctx.api_key_id}:{key}:{ctx.request_hash.hex()}"
            )
            async with self._db.transaction() as conn:
                held = await self._idempotency.claim_many(
                    conn,
                    claims=[Claim(ctx.api_key_id, key, ctx.request_hash, sub_id)],
                    ttl_h=self._idempotency_ttl_h,
                )
            record = next(iter(held.values()), None)
            # Another request under this key is refused, a finished one replayed; one still
            # processing (in flight, or its process died) goes on with the same subscription.
            if record is not None and (record.request_hash != ctx.request_hash or record.completed):
                return held_result(record, ctx.request_hash)
        async with self._db.connection() as conn:
            existing = await self._subs.get(conn, subscription_id=sub_id)
            if existing is None:
                price, trial_days = await self._terms.price_of(conn, request)
            else:
                pending = await self._invoices.payable_of(
                    conn,
                    subscription_id=sub_id,
                    now=await self._billing.schedule.now_for(conn, existing.customer_id),
                )
        if existing is None:
            method_id = await self._terms.method_of(request.method, request.customer_id, ctx)
            try:
                async with self._db.transaction() as conn:
                    pending = await self._insert(
                        conn, sub_id, request, price, trial_days, method_id, ctx
                    )
            except asyncpg.UniqueViolationError:
                # The same request under the same key, at the same moment, wrote it first:
                # this one goes on with that subscription (its first invoice is paid once,
                # under the same charge key) and answers as the first does.
                async with self._db.connection() as conn:
                    first = await self._subs.get(conn, subscription_id=sub_id)
                    if first is None:
                        raise
                    pending = await self._invoices.payable_of(
                        conn,
                        subscription_id=sub_id,
                        now=await self._billing.schedule.now_for(conn, first.customer_id),
                    )
        if pending is not None:
            await self._billing.run_invoice(pending, principal)
        result = await self._answer(sub_id)
        if key is not None and result.body.get("status") != S.INCOMPLETE:
            async with self._db.transaction() as conn:
                await self._idempotency.complete_many(
                    conn, answers=[Answer(ctx.api_key_id, key, result.status_code, result.body)]
                )
        return result

    async def _insert(
        self,
        conn: asyncpg.Connection,
        sub_id: UUID,
        request: NewSubscription,
        price: Price,
        trial_days: int,
        method_id: UUID,
        ctx: RequestContext,
    ) -> UUID | None:
        """Write the subscription, its first invoice (unless it starts with a trial) and
        their events; the invoice to pay now."""
        principal = ctx.principal
        now = await self._billing.schedule.now_for(conn, request.customer_id)
        clock_id = await self._customers.test_clock_of(conn, customer_id=request.customer_id)
        trial_end = now + timedelta(days=trial_days) if trial_days else None
        draft = Subscription(
            id=sub_id,
            customer_id=request.customer_id,
            plan_id=request.plan_id,
            price=price,
            quantity=request.quantity,
            status=S.TRIALING if trial_end else S.INCOMPLETE,
            payment_method_id=method_id,
            billing_anchor=trial_end or now,
            period_index=0,
            current_period_start=now,
            current_period_end=now,
            trial_end=trial_end,
            trial_will_end_sent=False,
            cancel_at_period_end=False,
            cancelled_at=None,
            paused_at=None,
            resume_at=None,
            next_run_at=None,
            test_clock_id=clock_id,
            metadata=request.metadata,
            owner_api_key_id=ctx.api_key_id,
            created_at=now,
        )
        end = trial_end or draft.period(0)[1]
        next_run = now + _SETTLE_AFTER
        if trial_end is not None:
            next_run = min(trial_end - self._billing.schedule.trial_notice, trial_end)
        draft = replace(draft, current_period_end=end, next_run_at=max(next_run, now))
        sub = await self._subs.insert(conn, sub=draft, principal=principal)
        events = [subscription_event("subscription.created", sub, principal)]
        invoice_id = None
        if trial_end is None:
            invoice = period_invoice(sub, 0, BillingReason.SUBSCRIPTION_CREATE, now)
            created = await self._invoices.insert(conn, invoice=invoice, principal=principal)
            assert created is not None  # a new subscription's first period
            events.append(invoice_event("invoice.created", created, principal))
            invoice_id = created.id
        await self._outbox.add(conn, events=events)
        await self._billing.schedule.queue(conn, sub)
        return invoice_id

    async def _answer(self, sub_id: UUID) -> CommandResult:
        sub, latest = await self._reads.get(sub_id)
        if sub.status is S.FAILED and latest is not None:
            declined = CardDeclined(
                "The subscription's first payment was declined.",
                decline_code=latest.last_decline_code or "generic_decline",
            )
            return CommandResult.from_error(
                declined,
                subscription_id=str(sub.id),
                invoice_id=str(latest.id),
                payment_id=str(latest.payment_ids[-1]) if latest.payment_ids else None,
                subscription=sub.public(latest),
            )
        return CommandResult(201, sub.public(latest))
