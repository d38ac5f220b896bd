"""Console forms: the query filters of list pages and the posted fields of actions, as typed
models. A blank field (what an HTML form sends for an empty input) means "not given"."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, field_validator

from engine.payments.states import PaymentStatus
from engine.subscriptions.states import SubscriptionStatus
from engine.webhooks.states import DeliveryStatus
from schema.api.common import Email
from schema.api.payments import RefundReason
from schema.states import AlertStatus, AmlRule


class _Blanks(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


def next_page(filters: BaseModel, has_more: bool, last: UUID | None) -> dict[str, str] | None:
    """The query of the next page: the same filters, after the last row shown (None when no
    more follow)."""
    if not has_more or last is None:
        return None
    kept = filters.model_dump(mode="json", exclude_none=True)
    return {**kept, "starting_after": str(last)}


class PaymentFilters(_Blanks):
    status: PaymentStatus | None = None
    customer_id: UUID | None = None
    starting_after: UUID | None = None


class DeliveryFilters(_Blanks):
    status: DeliveryStatus | None = None
    starting_after: UUID | None = None


class MoneyAction(_Blanks):
    """A capture or a refund: an amount in major units (blank: all of it), a refund's reason,
    and the Idempotency-Key the form was rendered with (a double submit replays)."""

    idempotency_key: str
    amount: str | None = None
    reason: RefundReason | None = None


class KeyedAction(_Blanks):
    """An action with nothing to choose but its Idempotency-Key (a void)."""

    idempotency_key: str


class AlertFilters(_Blanks):
    rule: AmlRule | None = None
    status: AlertStatus | None = None
    customer_id: UUID | None = None
    starting_after: UUID | None = None


class CustomerSearch(_Blanks):
    email: Email | None = None
    starting_after: UUID | None = None


class SubscriptionFilters(_Blanks):
    status: SubscriptionStatus | None = None
    customer_id: UUID | None = None
    starting_after: UUID | None = None


class InvoicePage(_Blanks):
    starting_after: UUID | None = None
