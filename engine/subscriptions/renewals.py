"""Plain renewals in bulk: every subscription of a due run whose work is only "start the next
period and pay it" is renewed, charged and settled together, one statement per step for all
of them instead of one subscription at a time.

A plain renewal: an `active` subscription, due, whose period has ended, with nothing open
(no charge, no credit), no change waiting for the next period and no cancel at the period's
end. Everything else (trials, pauses, dunning, credits, changes, cancels) is left to the
one-by-one steps of `engine/subscriptions/billing.py`, which these steps mirror:

1. renew and begin (one transaction): the subscriptions are locked in id order and checked
   again under the lock, each plain one moves to its next period and its invoice is inserted
   with the first attempt already numbered and pending (`invoices_one_per_period` keeps one
   invoice per period whoever renews it);
2. charge (no transaction open): each under its attempt's idempotency key and payment id, as
   `InvoiceCharger.charge` does; the shard calls batch them;
3. settle (one transaction for those paid, `Settlement.settle_many`): only attempts still
   pending settle, so a second scheduler or a rerun after a crash settles each once.
A run cut short between the steps leaves the attempt pending: the next run (bulk or one by
one) takes it up under the same key and payment id, and the shard replays the first charge.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from engine.db.database import Database
from engine.events.outbox import Outbox
from engine.principal import Principal
from engine.subscriptions.charging import Attempt, InvoiceCharger
from engine.subscriptions.invoices.repository import InvoiceRepository
from engine.subscriptions.invoicing import invoice_event, period_invoice
from engine.subscriptions.models import Invoice, Subscription
from engine.subscriptions.repository import SubscriptionRepository
from engine.subscriptions.schedule import Schedule
from engine.subscriptions.settlement import Settlement
from engine.subscriptions.states import BillingReason, SubscriptionStatus

log = logging.getLogger("paygrid.subscriptions")


def is_plain_renewal(sub: Subscription, now: datetime) -> bool:
    """Whether all the subscription's due work at `now` is starting its next period (and
    paying it), as far as its own row tells (open invoices are checked apart)."""
    return (
        sub.status is SubscriptionStatus.ACTIVE
        and sub.next_run_at is not None
        and sub.next_run_at <= now
        and now >= sub.current_period_end
        and not sub.cancel_at_period_end
        and sub.pending_amount is None
    )


class Renewals:
    def __init__(
        self,
        db: Database,
        *,
        subscriptions: SubscriptionRepository,
        invoices: InvoiceRepository,
        schedule: Schedule,
        charger: InvoiceCharger,
        settlement: Settlement,
    ) -> None:
        self._db = db
        self._subs = subscriptions
        self._invoices = invoices
        self._schedule = schedule
        self._charger = charger
        self._settlement = settlement
        self._outbox = Outbox()

    async def run(self, subscription_ids: Sequence[UUID], principal: Principal) -> list[UUID]:
        """Renew, charge and settle the plain renewals among the subscriptions; the ids of
        the others, left to the one-by-one steps. A renewed subscription may still be due
        (a clock moved on several periods): the caller's next look finds it."""
        begun = await self._begin(subscription_ids, principal)
        renewed = {invoice.subscription_id for invoice, _ in begun}
        results = await self._charger.charge_all(begun, principal)
        attempts: list[Attempt] = []
        for (invoice, _), result in zip(begun, results, strict=True):
            if isinstance(result, Attempt):
                attempts.append(result)
            elif isinstance(result, Exception):
                # Its attempt stays pending: the next run takes it up under the same key
                # (and counts it if its outcome is still unknown).
                log.warning("renewal invoice %s not charged: %r", invoice.id, result)
            else:
                raise result
        await self._settlement.settle_many(attempts, principal)
        return [s for s in subscription_ids if s not in renewed]

    async def _begin(
        self, subscription_ids: Sequence[UUID], principal: Principal
    ) -> list[tuple[Invoice, Subscription]]:
        """Step 1: the plain renewals moved to their next period, each with its invoice and
        the invoice's first attempt pending."""
        async with self._db.transaction() as conn:
            locked = await self._subs.lock_with_time(
                conn, subscription_ids=subscription_ids, wall_now=self._schedule.now()
            )
            plain = [(sub, now) for sub, now in locked if is_plain_renewal(sub, now)]
            if not plain:
                return []
            busy = await self._invoices.with_open(
                conn, subscription_ids=[sub.id for sub, _ in plain]
            )
            plain = [(sub, now) for sub, now in plain if sub.id not in busy]
            if not plain:
                return []
            due = {sub.id: now for sub, now in plain}
            moved = await self._subs.renew_many(
                conn,
                renewals=[(sub, sub.period_index + 1, now) for sub, now in plain],
                principal=principal,
            )
            by_id = {sub.id: sub for sub in moved}
            invoices = await self._invoices.insert_begun(
                conn,
                invoices=[
                    period_invoice(
                        sub, sub.period_index, BillingReason.SUBSCRIPTION_CYCLE, due[sub.id]
                    )
                    for sub in moved
                ],
                principal=principal,
            )
            await self._outbox.add(
                conn, events=[invoice_event("invoice.created", i, principal) for i in invoices]
            )
        return [(i, by_id[i.subscription_id]) for i in invoices]
