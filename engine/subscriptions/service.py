"""The subscription API's operations: create (paying the first invoice at once, or starting a
trial), read, list, cancel, pause, resume, and the invoices.

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

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

import asyncpg

from engine.customers.repository import CustomerRepository
from engine.db.database import Database
from engine.errors import CardDeclined, InvalidRequest, NotFound, StateError
from engine.events.outbox import Outbox
from engine.idempotency.repository import Answer, Claim, IdempotencyRepository
from engine.payment_methods.models import NewCard, NewToken
from engine.payment_methods.service import PaymentMethodService
from engine.payments.commands import CommandResult, RequestContext
from engine.payments.results import held_result
from engine.plans.models import Price
from engine.plans.service import PlanService, check_price
from engine.principal import Principal
from engine.subscriptions.billing import Billing
from engine.subscriptions.invoicing import invoice_event, period_invoice, subscription_event
from engine.subscriptions.models import Invoice, NewInvoice, Subscription
from engine.subscriptions.proration import proration_lines
from engine.subscriptions.states import (
    LIVE,
    BillingReason,
    InvoiceStatus,
    SubscriptionStatus,
    check_transition,
)
from engine.test_clocks.repository import TestClockRepository
from schema.api.payment_method_ids import parse_payment_method_id

S = SubscriptionStatus
_SUBSCRIPTION_NAMESPACE = UUID("0c7e51a4-8f0b-4a39-bf61-2f4d2b1c9e37")
# How long a created subscription waits before its safety run settles an unsettled first
# payment (a process that died mid-charge).
_SETTLE_AFTER = timedelta(minutes=1)

MethodChoice = NewCard | NewToken | UUID


@dataclass(frozen=True, slots=True)
class NewSubscription:
    customer_id: UUID
    method: MethodChoice
    plan_id: UUID | None = None
    price: Price | None = None
    quantity: int = 1
    trial_period_days: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    """What a PUT changes; None leaves a field as it is."""

    quantity: int | None = None
    plan_id: UUID | None = None
    price: Price | None = None
    method: MethodChoice | None = None
    cancel_at_period_end: bool | None = None
    metadata: dict[str, str] | None = None
    # Charge or credit the unused part of the current period now (else from the next one).
    prorate: bool = False


def _check_same_schedule(sub: Subscription, fields: dict[str, Any]) -> None:
    """A new price keeps the subscription's currency and period: its invoices and its
    calendar stay one series (cancel and create another to change them)."""
    for name, current in (
        ("currency", sub.price.currency),
        ("interval", sub.price.interval),
        ("interval_count", sub.price.interval_count),
    ):
        if name in fields and fields[name] != current:
            raise InvalidRequest(
                f"a subscription's {name} cannot change; cancel it and create another",
                param=name,
            )


def _ended(sub: Subscription) -> StateError:
    return StateError(
        f"the subscription is {sub.status}; nothing can change it any more",
        code="subscription_state_invalid",
    )


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
        self._methods = methods
        self._plans = plans
        self._max_amount = max_amount
        self._idempotency_ttl_h = idempotency_ttl_h
        self._idempotency = IdempotencyRepository()
        self._subs = billing.subscriptions
        self._invoices = billing.invoices
        self._customers = CustomerRepository()
        self._clocks = TestClockRepository()
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
                price, trial_days = await self._price_of(conn, request)
            else:
                pending = await self._invoices.payable_of(
                    conn,
                    subscription_id=sub_id,
                    now=await self._billing.schedule.now_for(conn, existing.customer_id),
                )
        if existing is None:
            method_id = await self._method_of(request.method, request.customer_id, ctx)
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

    async def _price_of(
        self, conn: asyncpg.Connection, request: NewSubscription
    ) -> tuple[Price, int]:
        if not await self._customers.existing(conn, customer_ids=[request.customer_id]):
            raise NotFound(f"no customer {request.customer_id}", param="customer_id")
        if request.plan_id is not None:
            plan = await self._plans.require_active(conn, request.plan_id)
            trial = plan.trial_period_days
            price = plan.price
        else:
            assert request.price is not None, "the API model requires a plan or a price"
            check_price(request.price, max_amount=self._max_amount)
            trial, price = 0, request.price
        if request.trial_period_days is not None:
            trial = request.trial_period_days
        if price.amount * request.quantity > self._max_amount:
            raise InvalidRequest(
                f"amount times quantity may be at most {self._max_amount}", param="quantity"
            )
        return price, trial

    async def _method_of(
        self, method: MethodChoice, customer_id: UUID, ctx: RequestContext
    ) -> UUID:
        """The saved method the subscription pays with: a card or token is saved for the
        customer first; a saved one must be the customer's and attached."""
        if isinstance(method, UUID):
            await self._methods.charge_source(method, customer_id)
            return method
        # Under the request's own key (suffixed), a retry replays the first save.
        key = None if ctx.idempotency_key is None else f"{ctx.idempotency_key}:payment_method"
        saved = await self._methods.attach(
            method, customer_id=customer_id, ctx=replace(ctx, idempotency_key=key)
        )
        if saved.is_error:
            raise StateError(saved.body["message"], code=saved.body["code"])
        return parse_payment_method_id(saved.body["id"])

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
        sub, latest = await self.get(sub_id)
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

    async def get(self, subscription_id: UUID) -> tuple[Subscription, Invoice | None]:
        """The subscription and its latest invoice, or NotFound."""
        async with self._db.connection() as conn:
            sub = await self._require(conn, subscription_id)
            latest = await self._invoices.latest(conn, subscription_ids=[sub.id])
        return sub, latest.get(sub.id)

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
        async with self._db.connection() as conn:
            subs, more = await self._subs.page(
                conn,
                customer_id=customer_id,
                status=status,
                limit=limit,
                starting_after=starting_after,
            )
            latest = await self._invoices.latest(conn, subscription_ids=[s.id for s in subs])
        return [s.public(latest.get(s.id)) for s in subs], more

    async def cancel(
        self, subscription_id: UUID, *, at_period_end: bool, principal: Principal
    ) -> Subscription:
        """Cancel now (open invoices voided, nothing charged again), or let the current
        period run out first."""
        async with self._db.transaction() as conn:
            sub = await self._require(conn, subscription_id, for_update=True)
            if sub.status not in LIVE:
                raise _ended(sub)
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
            sub = await self._require(conn, subscription_id, for_update=True)
            if sub.status not in LIVE:
                raise _ended(sub)
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
            sub = await self._require(conn, subscription_id, for_update=True)
            if sub.status not in LIVE:
                raise _ended(sub)
            if sub.status is not S.PAUSED:
                raise StateError(
                    f"only a paused subscription resumes; this one is {sub.status}",
                    code="subscription_state_invalid",
                )
            now = await self._billing.schedule.now_for(conn, sub.customer_id)
            invoice_id = await self._billing.periods.resume_in(conn, sub, now, principal)
        if invoice_id is not None:
            await self._billing.run_invoice(invoice_id, principal)
        return (await self.get(subscription_id))[0]

    async def update(
        self, subscription_id: UUID, change: SubscriptionChange, ctx: RequestContext
    ) -> Subscription:
        """Change quantity, price or plan (from the next period, or now with prorations),
        the payment method (a past_due subscription's open invoice is retried with it at
        once), cancel at period end or the metadata."""
        principal = ctx.principal
        async with self._db.connection() as conn:
            sub = await self._require(conn, subscription_id)
        if sub.status not in LIVE:
            raise _ended(sub)
        # What needs I/O of its own (a plan's price, a card saved) is resolved first; the
        # fields are built from the row read under the lock, so two changes at once each
        # keep what the other set.
        price = await self._new_price(sub, change)
        method_id = None
        if change.method is not None:
            method_id = await self._method_of(change.method, sub.customer_id, ctx)
        retry = None
        proration = None
        async with self._db.transaction() as conn:
            sub = await self._require(conn, subscription_id, for_update=True)
            if sub.status not in LIVE:
                raise _ended(sub)
            fields = self._changed_fields(sub, change, price, method_id)
            _check_same_schedule(sub, fields)
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
        return (await self.get(subscription_id))[0]

    async def _settle_proration(
        self, invoice_id: UUID, is_credit: bool, principal: Principal
    ) -> None:
        """Pay a change's proration within its request: a credit back, a charge now (402
        when declined: the change is not applied)."""
        if is_credit:
            await self._billing.credit(invoice_id, principal)
            return
        await self._billing.run_invoice(invoice_id, principal)
        charged = await self.invoice(invoice_id)
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
                fields.update(
                    plan_id=target.plan_id,
                    amount=target.price.amount,
                    quantity=target.quantity,
                    pending_plan_id=None,
                    pending_amount=None,
                    pending_quantity=None,
                )
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

    async def _new_price(self, sub: Subscription, change: SubscriptionChange) -> Price | None:
        """The new price a change names (a plan's, or inline), checked as on creation with
        the quantity it will have; None when it names none."""
        priced = change.plan_id is not None or change.price is not None
        if not priced and change.quantity is None:
            return None
        checked = NewSubscription(
            sub.customer_id,
            sub.payment_method_id,
            plan_id=change.plan_id,
            price=change.price if priced else sub.price,
            quantity=change.quantity or sub.quantity,
        )
        async with self._db.connection() as conn:
            price, _ = await self._price_of(conn, checked)
        return price if priced else None

    def _changed_fields(
        self,
        sub: Subscription,
        change: SubscriptionChange,
        price: Price | None,
        method_id: UUID | None,
    ) -> dict[str, Any]:
        """The columns a change sets, from the subscription as it is now."""
        fields: dict[str, Any] = {}
        if change.quantity is not None:
            fields["quantity"] = change.quantity
        if price is not None:
            fields.update(
                plan_id=change.plan_id,
                amount=price.amount,
                currency=price.currency,
                interval=price.interval,
                interval_count=price.interval_count,
            )
        amount = price.amount if price is not None else sub.price.amount
        if amount * fields.get("quantity", sub.quantity) > self._max_amount:
            raise InvalidRequest(
                f"amount times quantity may be at most {self._max_amount}", param="quantity"
            )
        if method_id is not None:
            fields["payment_method_id"] = method_id
        if change.cancel_at_period_end is not None:
            fields["cancel_at_period_end"] = change.cancel_at_period_end
        if change.metadata is not None:
            fields["metadata"] = change.metadata
        return fields

    async def invoices(
        self, subscription_id: UUID, *, limit: int, starting_after: UUID | None
    ) -> tuple[list[Invoice], bool]:
        """The subscription's invoices, newest first, and whether more follow."""
        async with self._db.connection() as conn:
            await self._require(conn, subscription_id)
            return await self._invoices.page(
                conn, subscription_id=subscription_id, limit=limit, starting_after=starting_after
            )

    async def invoice(self, invoice_id: UUID) -> Invoice:
        """One invoice, or NotFound."""
        async with self._db.connection() as conn:
            found = await self._invoices.get(conn, invoice_id=invoice_id)
        if found is None:
            raise NotFound(f"no invoice {invoice_id}", param="invoice_id")
        return found

    async def _require(
        self, conn: asyncpg.Connection, subscription_id: UUID, *, for_update: bool = False
    ) -> Subscription:
        found = await self._subs.get(conn, subscription_id=subscription_id, for_update=for_update)
        if found is None:
            raise NotFound(f"no subscription {subscription_id}", param="subscription_id")
        return found
