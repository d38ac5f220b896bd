"""Console forms: the query filters of list pages and the posted fields of actions, as typed
models. A blank field (what an HTML form sends for an empty input) means "not given"."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, field_validator

from engine.errors import InvalidRequest
from engine.payments.models import PaymentWindow
from engine.payments.states import PaymentStatus
from engine.subscriptions.states import SubscriptionStatus
from engine.webhooks.states import DeliveryStatus
from schema.api.common import Currency, Email
from schema.api.payments import RefundReason
from schema.states import AlertStatus, AmlRule
from serve_app.console.amounts import minor_units


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
    """The payments list's filters: status, customer, created on or between UTC days, and an
    amount range typed in major units of one currency."""

    status: PaymentStatus | None = None
    customer_id: UUID | None = None
    created_from: date | None = None
    created_to: date | None = None
    currency: Currency | None = None
    amount_min: str | None = None
    amount_max: str | None = None
    starting_after: UUID | None = None

    def narrowed(self) -> bool:
        """Whether any filter is set (the cursor aside): an empty page then says so."""
        return bool(self.model_dump(exclude_none=True, exclude={"starting_after"}))

    def window(self) -> PaymentWindow:
        """The engine's bounds: the days as UTC instants (`created_to` whole, so up to the next
        midnight), the amounts in minor units of the currency exactly. InvalidRequest names
        the field when the bounds cannot hold."""
        if self.created_from and self.created_to and self.created_to < self.created_from:
            raise InvalidRequest("created_to: must not be before created_from", param="created_to")
        if (self.amount_min or self.amount_max) and self.currency is None:
            raise InvalidRequest(
                "currency: an amount range needs the currency it is in", param="currency"
            )
        low = high = None
        if self.currency is not None:
            low = minor_units(self.amount_min or "", self.currency, "amount_min")
            high = minor_units(self.amount_max or "", self.currency, "amount_max")
        if low is not None and high is not None and high < low:
            raise InvalidRequest("amount_max: must not be below amount_min", param="amount_max")
        return PaymentWindow(
            created_from=_midnight(self.created_from),
            created_before=_midnight(self.created_to + timedelta(days=1))
            if self.created_to
            else None,
            currency=self.currency,
            amount_min=low,
            amount_max=high,
        )


def _midnight(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, UTC) if day else None


class DeliveryFilters(_Blanks):
    status: DeliveryStatus | None = None
    endpoint_id: UUID | None = None
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
