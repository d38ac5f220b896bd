"""How an attempt to pay an invoice settles, and what dunning does after a decline.

An invoice is paid by `engine/subscriptions/charging.py` (numbered attempt, charge under a key
that makes any repeat a replay); settling it here happens in one transaction, only if the
attempt is still the pending one: the invoice, the subscription's move per the transition
table, the events and the next job together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from engine.db.database import Database
from engine.events.outbox import Outbox
from engine.principal import Principal
from engine.subscriptions.charging import Attempt, Declined, Paid
from engine.subscriptions.invoices.repository import InvoiceRepository, PaidAttempt
from engine.subscriptions.invoicing import invoice_event, subscription_event
from engine.subscriptions.models import Invoice, Subscription
from engine.subscriptions.periods import price_columns
from engine.subscriptions.repository import SubscriptionRepository
from engine.subscriptions.schedule import Schedule
from engine.subscriptions.states import CHARGEABLE, BillingReason, InvoiceStatus, SubscriptionStatus

S = SubscriptionStatus

# The event of each move a decline makes.
_DECLINE_MOVES = {
    S.PAST_DUE: "subscription.past_due",
    S.CANCELLED: "subscription.cancelled",
    S.FAILED: "subscription.updated",
}


@dataclass(frozen=True, slots=True)
class Dunning:
    """When a declined invoice is retried (days after it fell due), and what the last
    decline does: cancel the subscription and mark the invoice uncollectible, or leave the
    subscription past_due."""

    retry_days: tuple[float, ...]
    cancel_after_retries: bool = True


class Settlement:
    def __init__(
        self,
        db: Database,
        *,
        subscriptions: SubscriptionRepository,
        invoices: InvoiceRepository,
        schedule: Schedule,
        dunning: Dunning,
    ) -> None:
        self._db = db
        self._subs = subscriptions
        self._invoices = invoices
        self._schedule = schedule
        self._dunning = dunning
        self._outbox = Outbox()

    async def settle(self, attempt: Attempt, principal: Principal) -> Subscription:
        """Record how an attempt came out, move the subscription, write the events and queue
        what comes next, in one transaction. An attempt another run settled first changes
        nothing."""
        invoice = attempt.invoice
        async with self._db.transaction() as conn:
            sub = await self._subs.get(
                conn, subscription_id=invoice.subscription_id, for_update=True
            )
            assert sub is not None
            now = await self._schedule.now_for(conn, sub.customer_id)
            if sub.status not in CHARGEABLE:
                return await self._settle_unattended(conn, sub, invoice, attempt, now, principal)
            if isinstance(attempt.outcome, Paid):
                return await self._settle_paid(conn, sub, invoice, attempt.outcome, now, principal)
            if invoice.billing_reason is BillingReason.SUBSCRIPTION_UPDATE:
                return await self._settle_declined_change(
                    conn, sub, invoice, attempt.outcome, principal
                )
            return await self._settle_declined(conn, sub, invoice, attempt.outcome, now, principal)

    async def settle_many(self, attempts: Sequence[Attempt], principal: Principal) -> None:
        """Settle many attempts: those that paid a period of a subscription still `active`
        (a plain renewal) together, in one transaction of one statement per step, as
        `settle` would one by one; any other attempt through `settle`, one by one."""
        plain: list[Attempt] = []
        rest: list[Attempt] = []
        for a in attempts:
            renewal = (
                isinstance(a.outcome, Paid)
                and a.invoice.billing_reason is BillingReason.SUBSCRIPTION_CYCLE
                and a.invoice.applies is None
            )
            (plain if renewal else rest).append(a)
        if plain:
            rest += await self._settle_renewals(plain, principal)
        for attempt in rest:
            await self.settle(attempt, principal)

    async def _settle_renewals(
        self, attempts: Sequence[Attempt], principal: Principal
    ) -> list[Attempt]:
        """Settle paid renewals of `active` subscriptions in one transaction; the attempts
        whose subscription moved meanwhile (to settle one by one)."""
        async with self._db.transaction() as conn:
            locked = await self._subs.lock_with_time(
                conn,
                subscription_ids=[a.invoice.subscription_id for a in attempts],
                wall_now=self._schedule.now(),
            )
            subs = {sub.id: (sub, now) for sub, now in locked if sub.status is S.ACTIVE}
            mine = [a for a in attempts if a.invoice.subscription_id in subs]
            settled = await self._invoices.settle_paid(
                conn,
                paid=[
                    PaidAttempt(
                        a.invoice.id,
                        a.invoice.attempts,
                        a.outcome.payment_id,
                        subs[a.invoice.subscription_id][1],
                    )
                    for a in mine
                    if isinstance(a.outcome, Paid)
                ],
                principal=principal,
            )
            retries = await self._invoices.next_attempts(
                conn, subscription_ids=[i.subscription_id for i in settled]
            )
            next_runs: dict[UUID, datetime | None] = {}
            for invoice in settled:
                sub = subs[invoice.subscription_id][0]
                retry_at = retries.get(sub.id)
                later = self._schedule.next_run(sub, sub.status)
                next_runs[sub.id] = (
                    later if retry_at is None or later is None else min(later, retry_at)
                )
            moved = await self._subs.set_next_runs(conn, next_runs=next_runs, principal=principal)
            await self._outbox.add(
                conn, events=[invoice_event("invoice.paid", i, principal) for i in settled]
            )
            await self._schedule.queue_many(conn, moved)
        return [a for a in attempts if a.invoice.subscription_id not in subs]

    async def _settle_unattended(
        self,
        conn: asyncpg.Connection,
        sub: Subscription,
        invoice: Invoice,
        attempt: Attempt,
        now: datetime,
        principal: Principal,
    ) -> Subscription:
        """An attempt that outlived its subscription's chargeable state (paused, cancelled or
        failed while it ran): a payment that went through pays the invoice, a decline voids
        it (nothing is retried), and every other open invoice is voided; the subscription
        does not move."""
        outcome = attempt.outcome
        paid = isinstance(outcome, Paid)
        settled = await self._invoices.settle_attempt(
            conn,
            invoice_id=invoice.id,
            attempt=invoice.attempts,
            status=InvoiceStatus.PAID if paid else InvoiceStatus.VOID,
            payment_ids=[] if outcome.payment_id is None else [outcome.payment_id],
            paid_at=now if paid else None,
            decline_code=None if isinstance(outcome, Paid) else outcome.code,
            next_attempt_at=None,
            principal=principal,
        )
        if settled is None:
            return sub
        events = [invoice_event("invoice.paid", settled, principal)]
        if not paid:
            events = [
                invoice_event("invoice.payment_failed", settled, principal),
                invoice_event("invoice.voided", settled, principal),
            ]
        voided = await self._invoices.close_open(
            conn, subscription_id=sub.id, status=InvoiceStatus.VOID, principal=principal
        )
        events += [invoice_event("invoice.voided", v, principal) for v in voided]
        await self._outbox.add(conn, events=events)
        return sub

    async def _settle_paid(
        self,
        conn: asyncpg.Connection,
        sub: Subscription,
        invoice: Invoice,
        paid: Paid,
        now: datetime,
        principal: Principal,
    ) -> Subscription:
        settled = await self._invoices.settle_attempt(
            conn,
            invoice_id=invoice.id,
            attempt=invoice.attempts,
            status=InvoiceStatus.PAID,
            payment_ids=[paid.payment_id],
            paid_at=now,
            decline_code=None,
            next_attempt_at=None,
            principal=principal,
        )
        if settled is None:
            return sub
        events = [invoice_event("invoice.paid", settled, principal)]
        changes: dict[str, Any] = {"next_run_at": self._schedule.next_run(sub, sub.status)}
        if settled.applies is not None and settled.period_end == sub.current_period_end:
            # A prorated upgrade, paid: its change takes effect now.
            applies = settled.applies
            plan_id = None if applies["plan_id"] is None else UUID(applies["plan_id"])
            changes.update(price_columns(plan_id, applies["amount"], applies["quantity"]))
        target = None
        retry_at = await self._invoices.next_attempt(conn, subscription_id=sub.id)
        if sub.status in (S.INCOMPLETE, S.PAST_DUE):
            changes["next_run_at"] = sub.current_period_end
            if retry_at is None:
                # Active again only once nothing else is left open.
                target = S.ACTIVE
        if retry_at is not None and changes["next_run_at"] is not None:
            changes["next_run_at"] = min(changes["next_run_at"], retry_at)
        moved = await self._subs.change(
            conn, subscription_id=sub.id, principal=principal, status=target, **changes
        )
        if moved is None:
            # Cancelled or paused while the charge ran: the invoice is paid all the same.
            moved = sub
        elif target is not None:
            events.append(subscription_event("subscription.updated", moved, principal))
        await self._outbox.add(conn, events=events)
        await self._schedule.queue(conn, moved)
        return moved

    async def _settle_declined_change(
        self,
        conn: asyncpg.Connection,
        sub: Subscription,
        invoice: Invoice,
        declined: Declined,
        principal: Principal,
    ) -> Subscription:
        """A change's proration declined: never dunned. The invoice is void, the change it
        would have applied is not, and the paid period goes on as it was."""
        settled = await self._invoices.settle_attempt(
            conn,
            invoice_id=invoice.id,
            attempt=invoice.attempts,
            status=InvoiceStatus.VOID,
            payment_ids=[] if declined.payment_id is None else [declined.payment_id],
            paid_at=None,
            decline_code=declined.code,
            next_attempt_at=None,
            principal=principal,
        )
        if settled is not None:
            await self._outbox.add(
                conn,
                events=[
                    invoice_event("invoice.payment_failed", settled, principal),
                    invoice_event("invoice.voided", settled, principal),
                ],
            )
        return sub

    async def _settle_declined(
        self,
        conn: asyncpg.Connection,
        sub: Subscription,
        invoice: Invoice,
        declined: Declined,
        now: datetime,
        principal: Principal,
    ) -> Subscription:
        first = invoice.billing_reason is BillingReason.SUBSCRIPTION_CREATE
        retries = self._dunning.retry_days
        retry_at = None
        status = InvoiceStatus.OPEN
        if first:
            status = InvoiceStatus.VOID
        elif invoice.attempts <= len(retries):
            retry_at = invoice.period_start + timedelta(days=retries[invoice.attempts - 1])
        else:
            status = InvoiceStatus.UNCOLLECTIBLE
        settled = await self._invoices.settle_attempt(
            conn,
            invoice_id=invoice.id,
            attempt=invoice.attempts,
            status=status,
            payment_ids=[] if declined.payment_id is None else [declined.payment_id],
            paid_at=None,
            decline_code=declined.code,
            next_attempt_at=retry_at,
            principal=principal,
        )
        if settled is None:
            return sub
        events = [invoice_event("invoice.payment_failed", settled, principal)]
        past_due = None if sub.status is S.PAST_DUE else S.PAST_DUE
        target: SubscriptionStatus | None
        changes: dict[str, Any] = {}
        if first:
            target, changes["next_run_at"] = S.FAILED, None
        elif status is InvoiceStatus.UNCOLLECTIBLE:
            events.append(invoice_event("invoice.uncollectible", settled, principal))
            if self._dunning.cancel_after_retries:
                target, changes["next_run_at"], changes["cancelled_at"] = S.CANCELLED, None, now
            else:
                # Left past_due: the next period still renews, and a success revives it.
                target, changes["next_run_at"] = past_due, sub.current_period_end
        else:
            # The retry, or the period's end if sooner (the next period still renews on
            # time), or another open invoice's retry if sooner still.
            others = await self._invoices.next_attempt(conn, subscription_id=sub.id)
            soonest = min(t for t in (retry_at, sub.current_period_end, others) if t is not None)
            target, changes["next_run_at"] = past_due, soonest
        moved = await self._subs.change(
            conn, subscription_id=sub.id, principal=principal, status=target, **changes
        )
        if moved is None:
            moved = sub
        elif target is not None:
            events.append(subscription_event(_DECLINE_MOVES[target], moved, principal))
            if target in (S.CANCELLED, S.FAILED):
                # Nothing is charged again: whatever else is open is void.
                voided = await self._invoices.close_open(
                    conn, subscription_id=sub.id, status=InvoiceStatus.VOID, principal=principal
                )
                events += [invoice_event("invoice.voided", v, principal) for v in voided]
        await self._outbox.add(conn, events=events)
        await self._schedule.queue(conn, moved)
        return moved
