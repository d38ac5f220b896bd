"""Recurring billing: renewals, trials, dunning and resuming, each step run when it falls due
on the customer's time, and how each attempt to pay an invoice settles.

An invoice is paid by `engine/subscriptions/charging.py` (numbered attempt, charge under a key
that makes any repeat a replay); settling it here happens in one transaction, only if the
attempt is still the pending one: the invoice, the subscription's move per the transition
table, the events and the next job together.

What is due is decided by `next_run_at` on the subscription, on its customer's clock. For a
customer on real time a `subscription.run` job is queued at that time; for one on a test clock,
advancing the clock runs `run_due` for its customers.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from engine.db.database import Database
from engine.errors import StateError, UpstreamError
from engine.events.outbox import Outbox
from engine.principal import Principal
from engine.scheduler.repository import JobRepository
from engine.subscriptions.charging import (
    Attempt,
    Declined,
    Executor,
    InvoiceCharger,
    Paid,
    SavedMethodOpener,
)
from engine.subscriptions.invoicing import invoice_event, period_invoice, subscription_event
from engine.subscriptions.models import Invoice, Subscription
from engine.subscriptions.repository import InvoiceRepository, SubscriptionRepository
from engine.subscriptions.states import (
    CHARGEABLE,
    BillingReason,
    InvoiceStatus,
    SubscriptionStatus,
)
from engine.test_clocks.clock import BillingClock

__all__ = ["RUN_JOB", "SWEEP_JOB", "Billing", "Dunning", "Executor"]

log = logging.getLogger("paygrid.subscriptions")

RUN_JOB = "subscription.run"
SWEEP_JOB = "subscriptions.sweep"

# Work a billing run does on the scheduler's behalf is attributed to no API key.
SYSTEM = Principal(None, "billing")
# One subscription's steps in one run: a year of daily periods, and then some.
_MAX_STEPS = 1000
_DUE_BATCH = 500

S = SubscriptionStatus

# The event of each move a decline makes.
_DECLINE_MOVES = {
    S.PAST_DUE: "subscription.past_due",
    S.CANCELLED: "subscription.cancelled",
    S.FAILED: "subscription.updated",
}


def _pending_applied(sub: Subscription) -> dict[str, Any]:
    """The columns that make a change waiting for the next period the current price, as a
    new period starts (nothing when none waits)."""
    if sub.pending_amount is None:
        return {}
    return {
        "plan_id": sub.pending_plan_id,
        "amount": sub.pending_amount,
        "quantity": sub.pending_quantity,
        "pending_plan_id": None,
        "pending_amount": None,
        "pending_quantity": None,
    }


@dataclass(frozen=True, slots=True)
class Dunning:
    """When a declined invoice is retried (days after it fell due), and what the last
    decline does: cancel the subscription and mark the invoice uncollectible, or leave the
    subscription past_due."""

    retry_days: tuple[float, ...]
    cancel_after_retries: bool = True


class Billing:
    def __init__(
        self,
        db: Database,
        *,
        execute: Executor,
        open_saved: SavedMethodOpener,
        clock: BillingClock,
        dunning: Dunning,
        trial_notice_days: int = 3,
        due_concurrency: int = 4,
    ) -> None:
        self._db = db
        self._clock = clock
        self._dunning = dunning
        self._trial_notice = timedelta(days=trial_notice_days)
        # Subscriptions billed at once by a test clock's advance or the overdue sweep (no more
        # than the scheduler's pool holds connections: more would only queue for them).
        self._due_concurrency = due_concurrency
        self.subscriptions = SubscriptionRepository()
        self.invoices = InvoiceRepository()
        self._outbox = Outbox()
        self._jobs = JobRepository()
        self._charger = InvoiceCharger(
            db,
            execute=execute,
            open_saved=open_saved,
            subscriptions=self.subscriptions,
            invoices=self.invoices,
        )

    @property
    def trial_notice(self) -> timedelta:
        """How long before a trial ends `subscription.trial_will_end` is sent."""
        return self._trial_notice

    async def now_for(self, conn: asyncpg.Connection, customer_id: UUID) -> datetime:
        """The time the customer lives at (its test clock's, or real time)."""
        return await self._clock.customer_now(conn, customer_id=customer_id)

    # -- paying an invoice ------------------------------------------------------------------

    async def settle(self, attempt: Attempt, principal: Principal) -> Subscription:
        """Record how an attempt came out, move the subscription, write the events and queue
        what comes next, in one transaction. An attempt another run settled first changes
        nothing."""
        invoice = attempt.invoice
        async with self._db.transaction() as conn:
            sub = await self.subscriptions.get(
                conn, subscription_id=invoice.subscription_id, for_update=True
            )
            assert sub is not None
            now = await self.now_for(conn, sub.customer_id)
            if sub.status not in CHARGEABLE:
                return await self._settle_unattended(conn, sub, invoice, attempt, now, principal)
            if isinstance(attempt.outcome, Paid):
                return await self._settle_paid(conn, sub, invoice, attempt.outcome, now, principal)
            if invoice.billing_reason is BillingReason.SUBSCRIPTION_UPDATE:
                return await self._settle_declined_change(
                    conn, sub, invoice, attempt.outcome, principal
                )
            return await self._settle_declined(conn, sub, invoice, attempt.outcome, now, principal)

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
        settled = await self.invoices.settle_attempt(
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
        voided = await self.invoices.close_open(
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
        settled = await self.invoices.settle_attempt(
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
        changes: dict[str, Any] = {"next_run_at": self.next_run(sub, sub.status)}
        if settled.applies is not None and settled.period_end == sub.current_period_end:
            # A prorated upgrade, paid: its change takes effect now.
            changes.update(
                plan_id=None
                if settled.applies["plan_id"] is None
                else UUID(settled.applies["plan_id"]),
                amount=settled.applies["amount"],
                quantity=settled.applies["quantity"],
                pending_plan_id=None,
                pending_amount=None,
                pending_quantity=None,
            )
        target = None
        retry_at = await self.invoices.next_attempt(conn, subscription_id=sub.id)
        if sub.status in (S.INCOMPLETE, S.PAST_DUE):
            changes["next_run_at"] = sub.current_period_end
            if retry_at is None:
                # Active again only once nothing else is left open.
                target = S.ACTIVE
        if retry_at is not None and changes["next_run_at"] is not None:
            changes["next_run_at"] = min(changes["next_run_at"], retry_at)
        moved = await self.subscriptions.change(
            conn, subscription_id=sub.id, principal=principal, status=target, **changes
        )
        if moved is None:
            # Cancelled or paused while the charge ran: the invoice is paid all the same.
            moved = sub
        elif target is not None:
            events.append(subscription_event("subscription.updated", moved, principal))
        await self._outbox.add(conn, events=events)
        await self.schedule(conn, moved)
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
        settled = await self.invoices.settle_attempt(
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
        settled = await self.invoices.settle_attempt(
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
            others = await self.invoices.next_attempt(conn, subscription_id=sub.id)
            soonest = min(t for t in (retry_at, sub.current_period_end, others) if t is not None)
            target, changes["next_run_at"] = past_due, soonest
        moved = await self.subscriptions.change(
            conn, subscription_id=sub.id, principal=principal, status=target, **changes
        )
        if moved is None:
            moved = sub
        elif target is not None:
            events.append(subscription_event(_DECLINE_MOVES[target], moved, principal))
            if target in (S.CANCELLED, S.FAILED):
                # Nothing is charged again: whatever else is open is void.
                voided = await self.invoices.close_open(
                    conn, subscription_id=sub.id, status=InvoiceStatus.VOID, principal=principal
                )
                events += [invoice_event("invoice.voided", v, principal) for v in voided]
        await self._outbox.add(conn, events=events)
        await self.schedule(conn, moved)
        return moved

    def next_run(self, sub: Subscription, status: SubscriptionStatus) -> datetime | None:
        """When billing must next look at a subscription in `status` with nothing pending."""
        if status in (S.CANCELLED, S.FAILED):
            return None
        if status is S.PAUSED:
            if sub.cancel_at_period_end:
                # Cancelled when its period ends, unless resumed before then.
                ends = sub.current_period_end
                return ends if sub.resume_at is None else min(sub.resume_at, ends)
            return sub.resume_at
        if status is S.TRIALING and sub.trial_end is not None:
            notice = sub.trial_end - self._trial_notice
            return sub.trial_end if sub.trial_will_end_sent else min(notice, sub.trial_end)
        return sub.current_period_end

    async def schedule(self, conn: asyncpg.Connection, sub: Subscription) -> None:
        """Queue the job that runs the subscription at `next_run_at`, for a customer on real
        time (a test clock's advance runs the others). One job per time: the dedupe key
        holds it."""
        if sub.next_run_at is None or sub.test_clock_id is not None:
            return
        await self._jobs.enqueue(
            conn,
            kind=RUN_JOB,
            payload={"subscription_id": str(sub.id)},
            run_at=sub.next_run_at,
            dedupe_key=f"{RUN_JOB}:{sub.id}:{sub.next_run_at.isoformat()}",
        )

    # -- running what is due ----------------------------------------------------------------

    async def run(self, subscription_id: UUID, principal: Principal = SYSTEM) -> None:
        """Do whatever is due for the subscription on its customer's time, step by step,
        until nothing is (a renewal job, or a test clock's advance)."""
        for _ in range(_MAX_STEPS):
            if not await self._step(subscription_id, principal):
                return
        log.warning("subscription %s still due after %d steps", subscription_id, _MAX_STEPS)

    async def run_due(self, clock_id: UUID, now: datetime) -> None:
        """Run every subscription of the test clock's customers with work due by `now`."""
        await self._run_all_due(clock_id, now)

    async def run_overdue(self) -> None:
        """Run every subscription on real time whose work is due and was not done: its job
        lost, or dead-lettered while a charge's outcome was unknown (the sweep's job)."""
        await self._run_all_due(None, self._clock.now())

    async def _run_all_due(self, clock_id: UUID | None, now: datetime) -> None:
        gate = asyncio.Semaphore(self._due_concurrency)
        # Each runs once: a run goes on until nothing is due, or stops for good reason.
        seen: set[UUID] = set()
        unsettled = 0

        async def one(subscription_id: UUID) -> None:
            nonlocal unsettled
            async with gate:
                try:
                    await self.run(subscription_id)
                except UpstreamError:
                    # Its charge's outcome is not known yet: the next run asks again.
                    unsettled += 1
                except Exception:
                    # One subscription's failure stops neither the others nor the run (a
                    # test clock's advance): it stays due, and the next run tries again.
                    log.exception("subscription %s failed its due run", subscription_id)

        while True:
            async with self._db.connection() as conn:
                due = await self.subscriptions.due(
                    conn, clock_id=clock_id, now=now, limit=_DUE_BATCH + len(seen)
                )
            fresh = [s for s in due if s not in seen]
            if not fresh:
                break
            seen.update(fresh)
            await asyncio.gather(*(one(s) for s in fresh))
        # Attempts left pending on subscriptions no run looks at again (paused or ended
        # while their charge ran, and the run cut short): settled from their payments.
        async with self._db.connection() as conn:
            stranded = await self.invoices.pending_unattended(
                conn, clock_id=clock_id, limit=_DUE_BATCH
            )

        async def settle_one(invoice_id: UUID) -> None:
            nonlocal unsettled
            async with gate:
                try:
                    await self.run_invoice(invoice_id, SYSTEM)
                except UpstreamError:
                    unsettled += 1
                except Exception:
                    log.exception("invoice %s failed to settle", invoice_id)

        await asyncio.gather(*(settle_one(i) for i in stranded))
        if unsettled:
            raise UpstreamError(
                f"{unsettled} subscriptions could not settle a charge yet; retried",
                code="charge_unsettled",
            )

    async def _step(self, subscription_id: UUID, principal: Principal) -> bool:
        """One due step; whether one ran (and another may be due)."""
        async with self._db.transaction() as conn:
            sub = await self.subscriptions.get(
                conn, subscription_id=subscription_id, for_update=True
            )
            if sub is None or sub.next_run_at is None:
                return False
            now = await self.now_for(conn, sub.customer_id)
            if sub.next_run_at > now:
                return False
            to_pay = None
            # Credits owed (a change's, its refunds cut short) are paid back first.
            credits = await self.invoices.credits_of(conn, subscription_id=sub.id)
            if sub.status is not S.PAUSED:
                to_pay = await self.invoices.payable_of(conn, subscription_id=sub.id, now=now)
            if to_pay is None:
                to_pay = await self._advance(conn, sub, now, principal)
        for credit in credits:
            try:
                await self.credit(credit, principal)
            except StateError:
                # Refused for good (its payments refunded some other way meanwhile): it stays
                # open for an operator, and the subscription's billing goes on.
                log.warning("credit invoice %s could not be paid back", credit, exc_info=True)
        if to_pay is not None:
            attempt = await self._charger.attempt(to_pay, principal)
            if attempt is not None:
                await self.settle(attempt, principal)
        return True

    async def _advance(
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
        later = self.next_run(sub, sub.status)
        retry_at = await self.invoices.next_attempt(conn, subscription_id=sub.id)
        if later is not None and retry_at is not None:
            later = min(later, retry_at)
        await self.subscriptions.change(
            conn,
            subscription_id=sub.id,
            principal=principal,
            next_run_at=later,
        )
        return None

    async def _trial_notice_sent(
        self, conn: asyncpg.Connection, sub: Subscription, principal: Principal
    ) -> None:
        moved = await self.subscriptions.change(
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
        await self.schedule(conn, moved)

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
        moved = await self.subscriptions.change(
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
        invoice = await self.invoices.insert(
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
        moved = await self.subscriptions.change(
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
            raise StateError(
                f"a {sub.status} subscription cannot be cancelled",
                code="subscription_state_invalid",
            )
        voided = await self.invoices.close_open(
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
        if now < sub.current_period_end and await self.invoices.period_paid(
            conn, subscription_id=sub.id, period_start=sub.current_period_start
        ):
            # Resumed within a period already paid: that period goes on (its paid time is
            # not billed again) and the next renews at its end.
            moved = await self.subscriptions.change(
                conn,
                subscription_id=sub.id,
                principal=principal,
                status=S.ACTIVE,
                paused_at=None,
                resume_at=None,
                next_run_at=sub.current_period_end,
            )
            if moved is None:
                raise StateError(
                    f"a {sub.status} subscription cannot be resumed",
                    code="subscription_state_invalid",
                )
            await self._outbox.add(
                conn, events=[subscription_event("subscription.resumed", moved, principal)]
            )
            await self.schedule(conn, moved)
            return None
        # Whatever the pause left open (a renewal whose charge never began) is not billed.
        stale = await self.invoices.close_open(
            conn, subscription_id=sub.id, status=InvoiceStatus.VOID, principal=principal
        )
        start, end = replace(sub, billing_anchor=now).period(0)
        moved = await self.subscriptions.change(
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
            raise StateError(
                f"a {sub.status} subscription cannot be resumed", code="subscription_state_invalid"
            )
        invoice = await self.invoices.insert(
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

    async def credit(self, invoice_id: UUID, principal: Principal) -> Invoice | None:
        """Pay a credit invoice back as the refunds planned with it and settle it; None when
        it is no longer open (or another run settled it)."""
        refunded = await self._charger.refund(invoice_id, principal)
        if refunded is None:
            return None
        async with self._db.transaction() as conn:
            now = await self.now_for(conn, refunded.customer_id)
            settled = await self.invoices.settle_attempt(
                conn,
                invoice_id=invoice_id,
                attempt=refunded.invoice.attempts,
                status=InvoiceStatus.PAID,
                payment_ids=refunded.refund_ids,
                paid_at=now,
                decline_code=None,
                next_attempt_at=None,
                principal=principal,
            )
            if settled is not None:
                await self._outbox.add(
                    conn, events=[invoice_event("invoice.paid", settled, principal)]
                )
        return settled

    async def run_invoice(self, invoice_id: UUID, principal: Principal) -> Subscription | None:
        """Attempt the invoice now and settle it (a credit: pay it back); None when it is no
        longer open."""
        async with self._db.connection() as conn:
            invoice = await self.invoices.get(conn, invoice_id=invoice_id)
        if invoice is not None and invoice.amount_due < 0:
            await self.credit(invoice_id, principal)
            return None
        attempt = await self._charger.attempt(invoice_id, principal)
        if attempt is None:
            return None
        return await self.settle(attempt, principal)
