"""Subscriptions and invoices: what a merchant sends, and what the API shows.

A subscription names a plan (`plan_id`) or gives its price inline (`amount`, `currency`,
`interval`, `interval_count`), never both. Its payment method is a card or token, saved for the
customer on creation, or a saved method of the customer (`{"id": "pm_…"}`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool, StrictInt, model_validator

from schema.api.common import Currency, Metadata, StrictModel
from schema.api.payment_method_ids import PaymentMethodId
from schema.api.payments import RecurringMethodCreate
from schema.api.plans import MAX_INTERVAL_COUNT, Amount, IntervalCount, TrialDays
from schema.api.test_clocks import UnixSeconds
from schema.states import BillingInterval, BillingReason, InvoiceStatus, SubscriptionStatus

Quantity = Annotated[StrictInt, Field(ge=1, le=10_000)]
_PRICE_FIELDS = ("amount", "currency", "interval")


class PriceChoice(StrictModel):
    """A plan, or an inline price: exactly one of the two."""

    plan_id: UUID | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    interval: BillingInterval | None = None
    interval_count: IntervalCount | None = None

    def _has_price(self) -> bool:
        return any(getattr(self, f) is not None for f in (*_PRICE_FIELDS, "interval_count"))

    def _check_price(self, *, required: bool) -> None:
        if self.plan_id is not None and self._has_price():
            raise ValueError("plan_id: give a plan_id or an inline price, not both")
        if self.plan_id is not None or not (required or self._has_price()):
            return
        for name in _PRICE_FIELDS:
            if getattr(self, name) is None:
                raise ValueError(f"{name}: required for an inline price (or give a plan_id)")
        assert self.interval is not None
        most = MAX_INTERVAL_COUNT[self.interval]
        if (self.interval_count or 1) > most:
            raise ValueError(
                f"interval_count: at most {most} for interval '{self.interval}' "
                "(a period is at most a year)"
            )


class SubscriptionCreate(PriceChoice):
    customer_id: UUID
    payment_method: RecurringMethodCreate
    quantity: Quantity = 1
    trial_period_days: TrialDays | None = None
    metadata: Metadata = Field(default_factory=dict)

    @model_validator(mode="after")
    def _price(self) -> SubscriptionCreate:
        self._check_price(required=True)
        return self


class SubscriptionUpdate(PriceChoice):
    quantity: Quantity | None = None
    payment_method: RecurringMethodCreate | None = None
    cancel_at_period_end: StrictBool | None = None
    proration_behavior: Literal["none", "create_prorations"] = "none"
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _price(self) -> SubscriptionUpdate:
        self._check_price(required=False)
        return self


class SubscriptionPause(StrictModel):
    resume_at: UnixSeconds | None = None


class SubscriptionPublic(BaseModel):
    id: UUID
    object: Literal["subscription"] = "subscription"
    customer_id: UUID
    plan_id: UUID | None
    amount: int
    currency: str
    interval: BillingInterval
    interval_count: int
    quantity: int
    status: SubscriptionStatus
    payment_method: PaymentMethodId
    billing_cycle_anchor: datetime
    current_period_start: datetime
    current_period_end: datetime
    trial_end: datetime | None
    cancel_at_period_end: bool
    cancelled_at: datetime | None
    paused_at: datetime | None
    resume_at: datetime | None
    test_clock: UUID | None
    metadata: dict[str, str]
    created_at: datetime
    pending_update: dict[str, Any] | None = Field(
        default=None,
        description="A change of price or quantity made with proration_behavior none: "
        "`plan_id`, `amount` and `quantity` from the next period on.",
    )
    latest_invoice: dict[str, Any] | None = Field(
        default=None,
        description="The latest invoice: shown by create, retrieve and list; null in the "
        "answers of changes (PUT, DELETE, pause, resume).",
    )


class InvoiceLinePublic(BaseModel):
    description: str
    amount: int
    quantity: int
    proration: bool
    period_start: datetime
    period_end: datetime


class InvoicePublic(BaseModel):
    id: UUID
    object: Literal["invoice"] = "invoice"
    subscription_id: UUID
    customer_id: UUID
    status: InvoiceStatus
    billing_reason: BillingReason
    currency: str
    amount_due: int
    amount_paid: int
    period_start: datetime
    period_end: datetime
    lines: list[InvoiceLinePublic]
    attempts: int
    next_attempt_at: datetime | None
    last_decline_code: str | None
    payments: list[UUID]
    paid_at: datetime | None
    created_at: datetime
