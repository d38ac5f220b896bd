"""Console forms: the query filters of list pages and the posted fields of actions, as typed
models. A blank field (what an HTML form sends for an empty input) means "not given"."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, field_validator

from engine.payments.states import PaymentStatus
from engine.webhooks.states import DeliveryStatus
from schema.api.payments import RefundReason


class _Blanks(BaseModel):
    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value


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
