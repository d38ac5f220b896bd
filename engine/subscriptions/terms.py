"""The terms a subscription is sold on, checked: its price and the payment method it pays with."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

import asyncpg

from engine.customers.repository import CustomerRepository
from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound, StateError
from engine.payment_methods.service import PaymentMethodService
from engine.payments.commands import RequestContext
from engine.plans.models import Price
from engine.plans.service import PlanService, check_price
from engine.subscriptions.commands import MethodChoice, NewSubscription, SubscriptionChange
from engine.subscriptions.models import Subscription
from schema.api.payment_method_ids import parse_payment_method_id


def check_same_schedule(sub: Subscription, fields: dict[str, Any]) -> None:
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


class Terms:
    """Checks what a subscription is sold on, as on creation and on a change: its customer,
    its price (a plan's or inline, bounded by `max_amount` times the quantity) and the saved
    payment method it pays with."""

    def __init__(
        self,
        db: Database,
        *,
        methods: PaymentMethodService,
        plans: PlanService,
        max_amount: int,
    ) -> None:
        self._db = db
        self._methods = methods
        self._plans = plans
        self._max_amount = max_amount
        self._customers = CustomerRepository()

    async def price_of(
        self, conn: asyncpg.Connection, request: NewSubscription
    ) -> tuple[Price, int]:
        """The price a new subscription is sold at and its trial days: its customer must
        exist, a plan be active, the amount times the quantity at most `max_amount`."""
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

    async def method_of(self, method: MethodChoice, customer_id: UUID, ctx: RequestContext) -> UUID:
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

    async def new_price(self, sub: Subscription, change: SubscriptionChange) -> Price | None:
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
            price, _ = await self.price_of(conn, checked)
        return price if priced else None

    def changed_fields(
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
