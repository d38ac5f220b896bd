"""Recurring billing: runs what falls due for each subscription on its customer's time
(renewals, trials, dunning retries, resuming), pays its invoices and settles each attempt.

The steps live each in its own module: when a subscription next runs in `schedule.py`, its
moves from period to period in `periods.py`, paying an invoice in `charging.py` and settling
the attempt (and dunning) in `settlement.py`. This module runs them: a renewal job runs a
subscription step by step until nothing is due; a test clock's advance and the overdue sweep
(which catches what a lost job left behind) take their plain renewals in bulk first
(`renewals.py`), and the rest step by step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import datetime
from uuid import UUID

from engine.db.database import Database
from engine.errors import StateError, UpstreamError
from engine.events.outbox import Outbox
from engine.principal import Principal
from engine.subscriptions.charging import (
    Executor,
    InvoiceCharger,
    SavedMethodOpener,
    SavedMethodsOpener,
)
from engine.subscriptions.invoices.repository import InvoiceRepository
from engine.subscriptions.invoicing import invoice_event
from engine.subscriptions.models import Invoice, Subscription
from engine.subscriptions.periods import Periods
from engine.subscriptions.renewals import Renewals
from engine.subscriptions.repository import SubscriptionRepository
from engine.subscriptions.schedule import Schedule
from engine.subscriptions.settlement import Dunning, Settlement
from engine.subscriptions.states import InvoiceStatus, SubscriptionStatus
from engine.test_clocks.clock import BillingClock

log = logging.getLogger("paygrid.subscriptions")

# Work a billing run does on the scheduler's behalf is attributed to no API key.
SYSTEM = Principal(None, "billing")
# One subscription's steps in one run: a year of daily periods, and then some.
_MAX_STEPS = 1000
_DUE_BATCH = 500
# Plain renewals renewed, charged and settled together, and such bulks at once: enough to fill
# the shard calls' batches while the next bulk's statements run.
_BULK = 64
_BULK_IN_FLIGHT = 4

S = SubscriptionStatus


class Billing:
    def __init__(
        self,
        db: Database,
        *,
        execute: Executor,
        open_saved: SavedMethodOpener,
        open_saved_many: SavedMethodsOpener | None = None,
        clock: BillingClock,
        dunning: Dunning,
        trial_notice_days: int = 3,
        due_concurrency: int = 4,
    ) -> None:
        self._db = db
        # Subscriptions billed at once by a test clock's advance or the overdue sweep (no more
        # than the scheduler's pool holds connections: more would only queue for them).
        self._due_concurrency = due_concurrency
        self.subscriptions = SubscriptionRepository()
        self.invoices = InvoiceRepository()
        self.schedule = Schedule(clock, trial_notice_days=trial_notice_days)
        self.periods = Periods(
            subscriptions=self.subscriptions, invoices=self.invoices, schedule=self.schedule
        )
        self._settlement = Settlement(
            db,
            subscriptions=self.subscriptions,
            invoices=self.invoices,
            schedule=self.schedule,
            dunning=dunning,
        )
        self._outbox = Outbox()
        self._charger = InvoiceCharger(
            db,
            execute=execute,
            open_saved=open_saved,
            open_saved_many=open_saved_many,
            subscriptions=self.subscriptions,
            invoices=self.invoices,
        )
        self._renewals = Renewals(
            db,
            subscriptions=self.subscriptions,
            invoices=self.invoices,
            schedule=self.schedule,
            charger=self._charger,
            settlement=self._settlement,
        )

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
        await self._run_all_due(None, self.schedule.now())

    async def _run_all_due(self, clock_id: UUID | None, now: datetime) -> None:
        gate = asyncio.Semaphore(self._due_concurrency)
        unsettled = 0

        async def guarded(run: Awaitable[object], what: str) -> None:
            nonlocal unsettled
            async with gate:
                try:
                    await run
                except UpstreamError:
                    # Its charge's outcome is not known yet: the next run asks again.
                    unsettled += 1
                except Exception:
                    # One subscription's failure stops neither the others nor the run (a
                    # test clock's advance): it stays due, and the next run tries again.
                    log.exception("%s failed its due run", what)

        # Each runs one by one once: a run goes on until nothing is due, or stops for good
        # reason.
        seen: set[UUID] = set()
        while True:
            async with self._db.connection() as conn:
                due = await self.subscriptions.due(
                    conn, clock_id=clock_id, now=now, limit=_DUE_BATCH + len(seen)
                )
            fresh = [s for s in due if s not in seen]
            if not fresh:
                break
            # Plain renewals in bulk first; the rest, and whatever is still due after them
            # but no plain renewal, one by one (a renewed subscription comes back only while
            # it has periods left to renew, so this ends).
            rest = await self._renew_in_bulk(fresh)
            seen.update(rest)
            await asyncio.gather(*(guarded(self.run(s), f"subscription {s}") for s in rest))
        # Attempts left pending on subscriptions no run looks at again (paused or ended
        # while their charge ran, and the run cut short): settled from their payments.
        async with self._db.connection() as conn:
            stranded = await self.invoices.pending_unattended(
                conn, clock_id=clock_id, limit=_DUE_BATCH
            )
        await asyncio.gather(
            *(guarded(self.run_invoice(i, SYSTEM), f"invoice {i}") for i in stranded)
        )
        if unsettled:
            raise UpstreamError(
                f"{unsettled} subscriptions could not settle a charge yet; retried",
                code="charge_unsettled",
            )

    async def _renew_in_bulk(self, subscription_ids: list[UUID]) -> list[UUID]:
        """The plain renewals among the subscriptions renewed in bulks (`_BULK` together,
        `_BULK_IN_FLIGHT` bulks at once); the ids of the others."""
        bulks = asyncio.Semaphore(_BULK_IN_FLIGHT)

        async def renew(bulk: list[UUID]) -> list[UUID]:
            async with bulks:
                try:
                    return await self._renewals.run(bulk, SYSTEM)
                except Exception:
                    # Whatever the bulk steps left undone, the one-by-one steps take up.
                    log.exception("bulk renewal of %d subscriptions failed", len(bulk))
                    return bulk

        parts = [subscription_ids[i : i + _BULK] for i in range(0, len(subscription_ids), _BULK)]
        return [s for rest in await asyncio.gather(*map(renew, parts)) for s in rest]

    async def _step(self, subscription_id: UUID, principal: Principal) -> bool:
        """One due step; whether one ran (and another may be due)."""
        async with self._db.transaction() as conn:
            sub = await self.subscriptions.get(
                conn, subscription_id=subscription_id, for_update=True
            )
            if sub is None or sub.next_run_at is None:
                return False
            now = await self.schedule.now_for(conn, sub.customer_id)
            if sub.next_run_at > now:
                return False
            to_pay = None
            # Credits owed (a change's, its refunds cut short) are paid back first.
            credits = await self.invoices.credits_of(conn, subscription_id=sub.id)
            if sub.status is not S.PAUSED:
                to_pay = await self.invoices.payable_of(conn, subscription_id=sub.id, now=now)
            if to_pay is None:
                to_pay = await self.periods.advance(conn, sub, now, principal)
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
                settled = await self._settlement.settle(attempt, principal)
                # Nothing more due by the step's time: no need to look again (one transaction
                # per renewal saved). Work due later has its job queued by the settlement.
                return settled.next_run_at is not None and settled.next_run_at <= now
        return True

    async def credit(self, invoice_id: UUID, principal: Principal) -> Invoice | None:
        """Pay a credit invoice back as the refunds planned with it and settle it; None when
        it is no longer open (or another run settled it)."""
        refunded = await self._charger.refund(invoice_id, principal)
        if refunded is None:
            return None
        async with self._db.transaction() as conn:
            now = await self.schedule.now_for(conn, refunded.customer_id)
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
        return await self._settlement.settle(attempt, principal)
