"""The subscription API's operations, one call per route: create, read, list, change, cancel,
pause, resume, and the invoices.

Creating lives in `signup.py`, changing in `changes.py`, the reads in `reads.py`; cancelling,
pausing and resuming are here, each one transaction that moves the subscription per the
transition table, writes its event and queues its next run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.db.database import Database
from engine.errors import InvalidRequest, StateError
from engine.events.outbox import Outbox
from engine.payment_methods.service import PaymentMethodService
from engine.payments.commands import CommandResult, RequestContext
from engine.plans.service import PlanService
from engine.principal import Principal
from engine.subscriptions.billing import Billing
from engine.subscriptions.changes import Changes
from engine.subscriptions.commands import NewSubscription, SubscriptionChange
from engine.subscriptions.invoicing import subscription_event
from engine.subscriptions.models import Invoice, Subscription
from engine.subscriptions.reads import SubscriptionReads
from engine.subscriptions.signup import Signup
from engine.subscriptions.states import SubscriptionStatus, check_live, check_transition
from engine.subscriptions.terms import Terms

S = SubscriptionStatus


class SubscriptionService:
    def __init__(
        self,
        db: Database,
        *,
        billing: Billing,
        methods: PaymentMethodService,
        plans: PlanService,
        max_amount: int,
        idempotency_ttl_h: int,
    ) -> None:
        self._db = db
        self._billing = billing
        self._subs = billing.subscriptions
        self._outbox = Outbox()
        terms = Terms(db, methods=methods, plans=plans, max_amount=max_amount)
        self._reads = SubscriptionReads(
            db, subscriptions=billing.subscriptions, invoices=billing.invoices
        )
        self._signup = Signup(
            db, billing=billing, terms=terms, reads=self._reads, idempotency_ttl_h=idempotency_ttl_h
        )
        self._changes = Changes(db, billing=billing, terms=terms, reads=self._reads)

    async def create(self, request: NewSubscription, ctx: RequestContext) -> CommandResult:
        """Create the subscription and pay its first invoice now (or start its trial): 201
        with the subscription, or 402 with the decline and the `failed` subscription."""
        return await self._signup.create(request, ctx)

    async def get(self, subscription_id: UUID) -> tuple[Subscription, Invoice | None]:
        """The subscription and its latest invoice, or NotFound."""
        return await self._reads.get(subscription_id)

    async def page(
        self,
        *,
        customer_id: UUID | None,
        status: SubscriptionStatus | None,
        limit: int,
        starting_after: UUID | None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Subscriptions (public objects with their latest invoice), newest first, and
        whether more follow."""
        return await self._reads.page(
            customer_id=customer_id, status=status, limit=limit, starting_after=starting_after
        )

    async def invoices(
        self, subscription_id: UUID, *, limit: int, starting_after: UUID | None
    ) -> tuple[list[Invoice], bool]:
        """The subscription's invoices, newest first, and whether more follow."""
        return await self._reads.invoices(
            subscription_id, limit=limit, starting_after=starting_after
        )

    async def invoice(self, invoice_id: UUID) -> Invoice:
        """One invoice, or NotFound."""
        return await self._reads.invoice(invoice_id)

    async def update(
        self, subscription_id: UUID, change: SubscriptionChange, ctx: RequestContext
    ) -> Subscription:
        """Change quantity, price or plan (from the next period, or now with prorations),
        the payment method, cancel at period end or the metadata."""
        return await self._changes.apply(subscription_id, change, ctx)

    async def cancel(
        self, subscription_id: UUID, *, at_period_end: bool, principal: Principal
    ) -> Subscription:
        """Cancel now (open invoices voided, nothing charged again), or let the current
        period run out first."""
        async with self._db.transaction() as conn:
            sub = await self._reads.require(conn, subscription_id, for_update=True)
            check_live(sub.status)
            if not at_period_end:
                now = await self._billing.schedule.now_for(conn, sub.customer_id)
                return await self._billing.periods.cancel_in(conn, sub, now, principal)
            moved = await self._subs.change(
                conn,
                subscription_id=sub.id,
                principal=principal,
                cancel_at_period_end=True,
                next_run_at=self._billing.schedule.next_run(
                    replace(sub, cancel_at_period_end=True), sub.status
                )
                if sub.status is S.PAUSED
                else sub.next_run_at,
            )
            assert moved is not None
            await self._outbox.add(
                conn, events=[subscription_event("subscription.updated", moved, principal)]
            )
            await self._billing.schedule.queue(conn, moved)
            return moved

    async def pause(
        self, subscription_id: UUID, *, resume_at: datetime | None, principal: Principal
    ) -> Subscription:
        """Pause: nothing is charged until it resumes (at `resume_at`, or when asked)."""
        async with self._db.transaction() as conn:
            sub = await self._reads.require(conn, subscription_id, for_update=True)
            check_live(sub.status)
            check_transition(sub.status, S.PAUSED)
            now = await self._billing.schedule.now_for(conn, sub.customer_id)
            if resume_at is not None and resume_at <= now:
                raise InvalidRequest("resume_at must be in the future", param="resume_at")
            moved = await self._subs.change(
                conn,
                subscription_id=sub.id,
                principal=principal,
                status=S.PAUSED,
                paused_at=now,
                resume_at=resume_at,
                next_run_at=self._billing.schedule.next_run(
                    replace(sub, resume_at=resume_at), S.PAUSED
                ),
            )
            assert moved is not None
            await self._outbox.add(
                conn, events=[subscription_event("subscription.paused", moved, principal)]
            )
            await self._billing.schedule.queue(conn, moved)
            return moved

    async def resume(self, subscription_id: UUID, principal: Principal) -> Subscription:
        """Resume a paused subscription: a new period starts now and is paid at once
        (a decline makes it past_due); nothing is billed for the pause."""
        async with self._db.transaction() as conn:
            sub = await self._reads.require(conn, subscription_id, for_update=True)
            check_live(sub.status)
            if sub.status is not S.PAUSED:
                raise StateError(
                    f"only a paused subscription resumes; this one is {sub.status}",
                    code="subscription_state_invalid",
                )
            now = await self._billing.schedule.now_for(conn, sub.customer_id)
            invoice_id = await self._billing.periods.resume_in(conn, sub, now, principal)
        if invoice_id is not None:
            await self._billing.run_invoice(invoice_id, principal)
        return (await self._reads.get(subscription_id))[0]
