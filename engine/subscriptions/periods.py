"""A subscription's moves from one period to the next, on its customer's time: the trial's
notice and end, the renewal that starts and invoices a period, cancelling and resuming. Each
runs in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from engine.errors import StateError
from engine.events.outbox import Outbox
from engine.principal import Principal
from engine.subscriptions.invoices.repository import InvoiceRepository
from engine.subscriptions.invoicing import invoice_event, period_invoice, subscription_event
from engine.subscriptions.models import Subscription
from engine.subscriptions.repository import SubscriptionRepository
from engine.subscriptions.schedule import Schedule
from engine.subscriptions.states import BillingReason, InvoiceStatus, SubscriptionStatus

S = SubscriptionStatus


def price_columns(plan_id: UUID | None, amount: int, quantity: int | None) -> dict[str, Any]:
    """The columns that make a price the subscription's current one, with no change left
    waiting for the next period."""
    return {
        "plan_id": plan_id,
        "amount": amount,
        "quantity": quantity,
        "pending_plan_id": None,
        "pending_amount": None,
        "pending_quantity": None,
    }


def _pending_applied(sub: Subscription) -> dict[str, Any]:
    """The columns that make a change waiting for the next period the current price, as a
    new period starts (nothing when none waits)."""
    if sub.pending_amount is None:
        return {}
    return price_columns(sub.pending_plan_id, sub.pending_amount, sub.pending_quantity)


def _refused(sub: Subscription, done: str) -> StateError:
    """A move the subscription's state no longer allows (another writer moved it first)."""
    return StateError(
        f"a {sub.status} subscription cannot be {done}", code="subscription_state_invalid"
    )


class Periods:
    def __init__(
        self,
        *,
        subscriptions: SubscriptionRepository,
        invoices: InvoiceRepository,
        schedule: Schedule,
    ) -> None:
        self._subs = subscriptions
        self._invoices = invoices
        self._schedule = schedule
        self._outbox = Outbox()

    async def advance(
        self, conn: asyncpg.Connection, sub: Subscription, now: datetime, principal: Principal
    ) -> UUID | None:
        """Move a due subscription on (trial notice or end, period end, resume); the invoice
        to pay now, if any."""
        if sub.status is S.TRIALING and sub.trial_end is not None:
            if now >= sub.trial_end and sub.cancel_at_period_end:
                await self.cancel_in(conn, sub, sub.trial_end, principal)
                return None
            if now >= sub.trial_end:
                return await self._renew(conn, sub, sub.period_index, S.ACTIVE, now, principal)
            if not sub.trial_will_end_sent:
                await self._trial_notice_sent(conn, sub, principal)
                return None
        if sub.status is S.PAUSED:
            # Resumed by the clock: the new period starts when it was due, not when it ran.
            return await self.resume_in(conn, sub, sub.resume_at or now, principal)
        if sub.status in (S.ACTIVE, S.PAST_DUE) and now >= sub.current_period_end:
            if sub.cancel_at_period_end:
                await self.cancel_in(conn, sub, sub.current_period_end, principal)
                return None
            return await self._renew(conn, sub, sub.period_index + 1, None, now, principal)
        # Nothing to do yet (a retry whose invoice was paid meanwhile): look again later, at
        # the next renewal or the next retry of an invoice still open.
        later = self._schedule.next_run(sub, sub.status)
        retry_at = await self._invoices.next_attempt(conn, subscription_id=sub.id)
        if later is not None and retry_at is not None:
            later = min(later, retry_at)
        await self._subs.change(
            conn,
            subscription_id=sub.id,
            principal=principal,
            next_run_at=later,
        )
        return None

    async def _trial_notice_sent(
        self, conn: asyncpg.Connection, sub: Subscription, principal: Principal
    ) -> None:
        moved = await self._subs.change(
            conn,
            subscription_id=sub.id,
            principal=principal,
            trial_will_end_sent=True,
            next_run_at=sub.trial_end,
        )
        assert moved is not None
        await self._outbox.add(
            conn, events=[subscription_event("subscription.trial_will_end", moved, principal)]
        )
        await self._schedule.queue(conn, moved)

    async def _renew(
        self,
        conn: asyncpg.Connection,
        sub: Subscription,
        index: int,
        status: SubscriptionStatus | None,
        now: datetime,
        principal: Principal,
    ) -> UUID | None:
        """Start period `index` and invoice it, due now (once per period, whoever runs it)."""
        start, end = sub.period(index)
        moved = await self._subs.change(
            conn,
            subscription_id=sub.id,
            principal=principal,
            status=status,
            period_index=index,
            current_period_start=start,
            current_period_end=end,
            next_run_at=now,
            **_pending_applied(sub),
        )
        assert moved is not None
        invoice = await self._invoices.insert(
            conn,
            invoice=period_invoice(moved, index, BillingReason.SUBSCRIPTION_CYCLE, now),
            principal=principal,
        )
        if invoice is None:
            return None
        events = [invoice_event("invoice.created", invoice, principal)]
        if status is not None:
            events.append(subscription_event("subscription.updated", moved, principal))
        await self._outbox.add(conn, events=events)
        return invoice.id

    async def cancel_in(
        self, conn: asyncpg.Connection, sub: Subscription, at: datetime, principal: Principal
    ) -> Subscription:
        """Cancel in the caller's transaction: open invoices are voided, nothing runs again."""
        moved = await self._subs.change(
            conn,
            subscription_id=sub.id,
            principal=principal,
            status=S.CANCELLED,
            cancelled_at=at,
            paused_at=None,
            resume_at=None,
            next_run_at=None,
        )
        if moved is None:
            raise _refused(sub, "cancelled")
        voided = await self._invoices.close_open(
            conn, subscription_id=sub.id, status=InvoiceStatus.VOID, principal=principal
        )
        await self._outbox.add(
            conn,
            events=[
                subscription_event("subscription.cancelled", moved, principal),
                *(invoice_event("invoice.voided", v, principal) for v in voided),
            ],
        )
        return moved

    async def resume_in(
        self, conn: asyncpg.Connection, sub: Subscription, now: datetime, principal: Principal
    ) -> UUID | None:
        """Resume in the caller's transaction. Within a period already paid, that period goes
        on; otherwise a new period starts now (nothing is billed for the pause) and its
        invoice is due at once. One marked to cancel at its period's end
        is cancelled instead once that end has passed."""
        if sub.cancel_at_period_end and now >= sub.current_period_end:
            await self.cancel_in(conn, sub, sub.current_period_end, principal)
            return None
        if now < sub.current_period_end and await self._invoices.period_paid(
            conn, subscription_id=sub.id, period_start=sub.current_period_start
        ):
            # Resumed within a period already paid: that period goes on (its paid time is
            # not billed again) and the next renews at its end.
            moved = await self._subs.change(
                conn,
                subscription_id=sub.id,
                principal=principal,
                status=S.ACTIVE,
                paused_at=None,
                resume_at=None,
                next_run_at=sub.current_period_end,
            )
            if moved is None:
                raise _refused(sub, "resumed")
            await self._outbox.add(
                conn, events=[subscription_event("subscription.resumed", moved, principal)]
            )
            await self._schedule.queue(conn, moved)
            return None
        # Whatever the pause left open (a renewal whose charge never began) is not billed.
        stale = await self._invoices.close_open(
            conn, subscription_id=sub.id, status=InvoiceStatus.VOID, principal=principal
        )
        start, end = replace(sub, billing_anchor=now).period(0)
        moved = await self._subs.change(
            conn,
            subscription_id=sub.id,
            principal=principal,
            status=S.ACTIVE,
            paused_at=None,
            resume_at=None,
            billing_anchor=now,
            period_index=0,
            current_period_start=start,
            current_period_end=end,
            next_run_at=now,
            **_pending_applied(sub),
        )
        if moved is None:
            raise _refused(sub, "resumed")
        invoice = await self._invoices.insert(
            conn,
            invoice=period_invoice(moved, 0, BillingReason.SUBSCRIPTION_CYCLE, now),
            principal=principal,
        )
        events = [
            *(invoice_event("invoice.voided", v, principal) for v in stale),
            subscription_event("subscription.resumed", moved, principal),
        ]
        if invoice is not None:
            events.append(invoice_event("invoice.created", invoice, principal))
        await self._outbox.add(conn, events=events)
        return None if invoice is None else invoice.id
