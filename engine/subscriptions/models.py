"""Subscriptions and invoices as the domain sees them, and their projection to the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.plans.models import Price
from engine.subscriptions.calendar import period_boundary
from engine.subscriptions.states import BillingReason, InvoiceStatus, SubscriptionStatus
from schema.api.subscriptions import InvoiceLinePublic, InvoicePublic, SubscriptionPublic


@dataclass(frozen=True, slots=True)
class Subscription:
    id: UUID
    customer_id: UUID
    plan_id: UUID | None
    price: Price
    quantity: int
    status: SubscriptionStatus
    payment_method_id: UUID
    billing_anchor: datetime
    period_index: int
    current_period_start: datetime
    current_period_end: datetime
    trial_end: datetime | None
    trial_will_end_sent: bool
    cancel_at_period_end: bool
    cancelled_at: datetime | None
    paused_at: datetime | None
    resume_at: datetime | None
    next_run_at: datetime | None
    test_clock_id: UUID | None
    metadata: dict[str, str]
    owner_api_key_id: UUID
    created_at: datetime
    # A change of price or quantity waiting for the next period (proration_behavior none).
    pending_plan_id: UUID | None = None
    pending_amount: int | None = None
    pending_quantity: int | None = None

    def period(self, index: int) -> tuple[datetime, datetime]:
        """Start and end of period `index`, counted from the billing anchor."""
        p = self.price
        return (
            period_boundary(self.billing_anchor, p.interval, p.interval_count, index),
            period_boundary(self.billing_anchor, p.interval, p.interval_count, index + 1),
        )

    @property
    def period_amount(self) -> int:
        return self.price.amount * self.quantity

    def public(self, latest_invoice: Invoice | None = None) -> dict[str, Any]:
        """The API's subscription object as JSON-ready values."""
        return SubscriptionPublic(
            id=self.id,
            customer_id=self.customer_id,
            plan_id=self.plan_id,
            amount=self.price.amount,
            currency=self.price.currency,
            interval=self.price.interval,
            interval_count=self.price.interval_count,
            quantity=self.quantity,
            status=self.status,
            payment_method=self.payment_method_id,
            billing_cycle_anchor=self.billing_anchor,
            current_period_start=self.current_period_start,
            current_period_end=self.current_period_end,
            trial_end=self.trial_end,
            cancel_at_period_end=self.cancel_at_period_end,
            cancelled_at=self.cancelled_at,
            paused_at=self.paused_at,
            resume_at=self.resume_at,
            test_clock=self.test_clock_id,
            metadata=self.metadata,
            created_at=self.created_at,
            pending_update=None
            if self.pending_amount is None
            else {
                "plan_id": None if self.pending_plan_id is None else str(self.pending_plan_id),
                "amount": self.pending_amount,
                "quantity": self.pending_quantity,
            },
            latest_invoice=None if latest_invoice is None else latest_invoice.public(),
        ).model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    description: str
    amount: int
    quantity: int
    period_start: datetime
    period_end: datetime
    proration: bool = False

    def stored(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "amount": self.amount,
            "quantity": self.quantity,
            "proration": self.proration,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
        }

    @classmethod
    def from_stored(cls, raw: dict[str, Any]) -> InvoiceLine:
        return cls(
            raw["description"],
            raw["amount"],
            raw["quantity"],
            datetime.fromisoformat(raw["period_start"]),
            datetime.fromisoformat(raw["period_end"]),
            raw["proration"],
        )


@dataclass(frozen=True, slots=True)
class NewInvoice:
    id: UUID
    subscription_id: UUID
    customer_id: UUID
    billing_reason: BillingReason
    currency: str
    period_start: datetime
    period_end: datetime
    lines: list[InvoiceLine]
    next_attempt_at: datetime | None
    refund_plan: list[tuple[UUID, int]] = field(default_factory=list)
    applies: dict[str, Any] | None = None

    @property
    def amount_due(self) -> int:
        return sum(line.amount for line in self.lines)


@dataclass(frozen=True, slots=True)
class Invoice:
    id: UUID
    subscription_id: UUID
    customer_id: UUID
    billing_reason: BillingReason
    status: InvoiceStatus
    currency: str
    amount_due: int
    amount_paid: int
    period_start: datetime
    period_end: datetime
    lines: list[InvoiceLine]
    attempts: int
    attempt_pending: bool
    next_attempt_at: datetime | None
    last_decline_code: str | None
    payment_ids: list[UUID]
    paid_at: datetime | None
    created_at: datetime
    # A credit's refunds: (payment, amount) each, planned when it was invoiced.
    refund_plan: list[tuple[UUID, int]] = field(default_factory=list)
    # An upgrade's change ({"plan_id", "amount", "quantity"}), applied once it is paid.
    applies: dict[str, Any] | None = None

    def public(self) -> dict[str, Any]:
        """The API's invoice object as JSON-ready values."""
        return InvoicePublic(
            id=self.id,
            subscription_id=self.subscription_id,
            customer_id=self.customer_id,
            status=self.status,
            billing_reason=self.billing_reason,
            currency=self.currency,
            amount_due=self.amount_due,
            amount_paid=self.amount_paid,
            period_start=self.period_start,
            period_end=self.period_end,
            lines=[
                InvoiceLinePublic(
                    description=line.description,
                    amount=line.amount,
                    quantity=line.quantity,
                    proration=line.proration,
                    period_start=line.period_start,
                    period_end=line.period_end,
                )
                for line in self.lines
            ],
            attempts=self.attempts,
            next_attempt_at=self.next_attempt_at,
            last_decline_code=self.last_decline_code,
            payments=self.payment_ids,
            paid_at=self.paid_at,
            created_at=self.created_at,
        ).model_dump(mode="json")
