"""Changing a subscription: its quantity, price or plan (from the next period, or now with a
proration invoiced and paid within the request), its payment method (a past_due subscription's
open invoice retried with it at once), cancelling at period end and its metadata."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from engine.db.database import Database
from engine.errors import CardDeclined, StateError
from engine.events.outbox import Outbox
from engine.payments.commands import RequestContext
from engine.plans.models import Price
from engine.principal import Principal
from engine.subscriptions.billing import Billing
from engine.subscriptions.commands import SubscriptionChange
from engine.subscriptions.invoicing import invoice_event, subscription_event
from engine.subscriptions.models import NewInvoice, Subscription
from engine.subscriptions.periods import price_columns
from engine.subscriptions.proration import proration_lines
from engine.subscriptions.reads import SubscriptionReads
from engine.subscriptions.states import BillingReason, InvoiceStatus, SubscriptionStatus, check_live
from engine.subscriptions.terms import Terms, check_same_schedule

S = SubscriptionStatus


class Changes:
    def __init__(
        self,
        db: Database,
        *,
        billing: Billing,
        terms: Terms,
        reads: SubscriptionReads,
    ) -> None:
        self._db = db
        self._billing = billing
        self._terms = terms
        self._reads = reads
        self._subs = billing.subscriptions
        self._invoices = billing.invoices
        self._outbox = Outbox()

    async def apply(
        self, subscription_id: UUID, change: SubscriptionChange, ctx: RequestContext
    ) -> Subscription:
        """Change quantity, price or plan (from the next period, or now with prorations),
        the payment method (a past_due subscription's open invoice is retried with it at
        once), cancel at period end or the metadata."""
        principal = ctx.principal
        async with self._db.connection() as conn:
            sub = await self._reads.require(conn, subscription_id)
        check_live(sub.status)
        # What needs I/O of its own (a plan's price, a card saved) is resolved first; the
        # fields are built from the row read under the lock, so two changes at once each
        # keep what the other set.
        price = await self._terms.new_price(sub, change)
        method_id = None
        if change.method is not None:
            method_id = await self._terms.method_of(change.method, sub.customer_id, ctx)
        retry = None
        proration = None
        async with self._db.transaction() as conn:
            sub = await self._reads.require(conn, subscription_id, for_update=True)
            check_live(sub.status)
            fields = self._terms.changed_fields(sub, change, price, method_id)
            check_same_schedule(sub, fields)
            # The change on top of the latest intent: a change waiting for the next period
            # keeps what this one leaves as it is.
            waiting = sub.pending_amount is not None
            target = replace(
                sub,
                plan_id=fields.get("plan_id", sub.pending_plan_id if waiting else sub.plan_id),
                price=Price(
                    fields.get("amount", sub.pending_amount or sub.price.amount),
                    sub.price.currency,
                    sub.price.interval,
                    sub.price.interval_count,
                ),
                quantity=fields.get("quantity", sub.pending_quantity or sub.quantity),
            )
            for name in ("plan_id", "amount", "currency", "interval", "interval_count"):
                fields.pop(name, None)
            fields.pop("quantity", None)
            priced = price is not None or change.quantity is not None
            if priced:
                proration = await self._price_change(conn, sub, target, change, fields, principal)
            moved = await self._subs.change(
                conn, subscription_id=sub.id, principal=principal, **fields
            )
            assert moved is not None
            if "payment_method_id" in fields and sub.status is S.PAST_DUE:
                now = await self._billing.schedule.now_for(conn, sub.customer_id)
                retry = await self._invoices.retry_now(
                    conn, subscription_id=sub.id, now=now, principal=principal
                )
            await self._outbox.add(
                conn, events=[subscription_event("subscription.updated", moved, principal)]
            )
            await self._billing.schedule.queue(conn, moved)
        if retry is not None:
            await self._billing.run_invoice(retry, principal)
        if proration is not None:
            await self._settle_proration(*proration, principal)
        return (await self._reads.get(subscription_id))[0]

    async def _settle_proration(
        self, invoice_id: UUID, is_credit: bool, principal: Principal
    ) -> None:
        """Pay a change's proration within its request: a credit back, a charge now (402
        when declined: the change is not applied)."""
        if is_credit:
            await self._billing.credit(invoice_id, principal)
            return
        await self._billing.run_invoice(invoice_id, principal)
        charged = await self._reads.invoice(invoice_id)
        if charged.status is InvoiceStatus.VOID:
            raise CardDeclined(
                "The change's proration was declined; the change was not applied.",
                decline_code=charged.last_decline_code or "generic_decline",
            )

    async def _price_change(
        self,
        conn: asyncpg.Connection,
        sub: Subscription,
        target: Subscription,
        change: SubscriptionChange,
        fields: dict[str, Any],
        principal: Principal,
    ) -> tuple[UUID, bool] | None:
        """Add to `fields` a change of price or quantity: now with prorations (an active
        subscription; the proration invoice returned), else from the next period."""
        if change.prorate and sub.status is S.ACTIVE:
            proration = None
            if target.period_amount != sub.period_amount:
                proration = await self._prorate(conn, sub, target, principal)
            if proration is None or proration[1]:
                # Nothing to charge (or a credit to pay back): the change applies now. A
                # charge applies it once paid.
                fields.update(price_columns(target.plan_id, target.price.amount, target.quantity))
            if proration is not None:
                # Owed either way: should the request be cut short, the next run settles it.
                fields["next_run_at"] = await self._billing.schedule.now_for(conn, sub.customer_id)
            return proration
        # From the next period: the current one stays at the price it was paid at.
        same = (target.price.amount, target.quantity, target.plan_id) == (
            sub.price.amount,
            sub.quantity,
            sub.plan_id,
        )
        fields.update(
            pending_plan_id=None if same else target.plan_id,
            pending_amount=None if same else target.price.amount,
            pending_quantity=None if same else target.quantity,
        )
        return None

    async def _prorate(
        self,
        conn: asyncpg.Connection,
        before: Subscription,
        after: Subscription,
        principal: Principal,
    ) -> tuple[UUID, bool] | None:
        """Invoice the change of the period's amount for the rest of the period, due now:
        the invoice and whether it is a credit; None when nothing is owed either way.

        The period must be paid (422 `subscription_period_unpaid` otherwise, with nothing
        changed): the credit is of what was paid for it, at most what was paid less the
        credits already given, and is paid back by refunds of the period's payments planned
        now (422 `credit_not_refundable` when they cannot cover it)."""
        unpaid = StateError(
            "the current period is not paid; prorations wait until it is",
            code="subscription_period_unpaid",
        )
        if await self._invoices.has_open(conn, subscription_id=before.id):
            raise unpaid
        if not await self._invoices.period_paid(
            conn, subscription_id=before.id, period_start=before.current_period_start
        ):
            raise unpaid
        paid = await self._invoices.period_paid_net(
            conn, subscription_id=before.id, period_end=before.current_period_end
        )
        now = await self._billing.schedule.now_for(conn, before.customer_id)
        lines = proration_lines(
            old_total=before.period_amount,
            new_total=after.period_amount,
            old_quantity=before.quantity,
            new_quantity=after.quantity,
            start=before.current_period_start,
            end=before.current_period_end,
            now=now,
            credit_cap=max(paid, 0),
        )
        net = sum(line.amount for line in lines)
        if net == 0:
            return None
        plan: list[tuple[UUID, int]] = []
        if net < 0:
            owed = -net
            for payment_id, refundable in await self._invoices.refundable_payments(
                conn, subscription_id=before.id, period_end=before.current_period_end
            ):
                take = min(owed, refundable)
                plan.append((payment_id, take))
                owed -= take
                if owed == 0:
                    break
            if owed:
                raise StateError(
                    "the period's payments cannot refund this credit",
                    code="credit_not_refundable",
                )
        invoice = NewInvoice(
            uuid4(),
            before.id,
            before.customer_id,
            BillingReason.SUBSCRIPTION_UPDATE,
            before.price.currency,
            now,
            before.current_period_end,
            lines,
            now if net > 0 else None,
            refund_plan=plan,
            applies=None
            if net < 0
            else {
                "plan_id": None if after.plan_id is None else str(after.plan_id),
                "amount": after.price.amount,
                "quantity": after.quantity,
            },
        )
        created = await self._invoices.insert(conn, invoice=invoice, principal=principal)
        assert created is not None  # update invoices are not one per period
        await self._outbox.add(conn, events=[invoice_event("invoice.created", created, principal)])
        return created.id, net < 0
