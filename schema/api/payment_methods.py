"""Saved payment methods: what a merchant sends to save a card or a token for a customer, and
the only view of a saved method that ever leaves the vault.

The card body is the payment request's card (`CardCreate`, so the same Luhn, expiry and CVC
checks) plus the customer and the holder's name; the CVC is checked here and then dropped,
never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Discriminator, Tag

from schema.api.common import ShortText
from schema.api.payment_method_ids import PaymentMethodId
from schema.api.payments import CardCreate, TokenCreate
from schema.states import PaymentMethodStatus


class CardMethodCreate(CardCreate):
    customer_id: UUID
    holder_name: ShortText | None = None


class TokenMethodCreate(TokenCreate):
    customer_id: UUID


def _method_type(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if isinstance(kind, str) else None


PaymentMethodAttach = Annotated[
    Annotated[CardMethodCreate, Tag("card")] | Annotated[TokenMethodCreate, Tag("token")],
    Discriminator(
        _method_type,
        custom_error_type="payment_method_type",
        custom_error_message="type: must be 'card' or 'token'",
    ),
]


class SavedMethodPublic(BaseModel):
    """A saved payment method as answers, lists and events show it: never the number, and
    never the expiry, which lives only sealed in the vault (with the number)."""

    id: PaymentMethodId
    object: Literal["payment_method"] = "payment_method"
    type: Literal["card", "token"]
    status: PaymentMethodStatus
    brand: str
    last4: str
    fingerprint: str
    customer_id: UUID
    created_at: datetime
    detached_at: datetime | None
