"""Saved payment methods as the domain sees them, and their projection to the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from engine.cards import CardDetails, CardToken
from engine.payment_methods.states import PaymentMethodStatus
from schema.api.payment_methods import SavedMethodPublic

MethodType = Literal["card", "token"]


@dataclass(frozen=True, slots=True)
class NewCard:
    """A card to save: the number and holder's name are sealed, never stored in clear; the CVC,
    when given, is checked with the gateway and then dropped."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    holder_name: str | None = field(default=None, repr=False)
    cvc: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class NewToken:
    """A gateway token to save (a sandbox `tok_…`)."""

    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PaymentMethod:
    """A saved payment method: only what may be shown."""

    id: UUID
    customer_id: UUID
    type: MethodType
    status: PaymentMethodStatus
    brand: str
    last4: str
    fingerprint: str
    created_at: datetime
    detached_at: datetime | None

    def public(self) -> dict[str, Any]:
        """The API's payment method object as JSON-ready values."""
        return SavedMethodPublic(
            id=self.id,
            type=self.type,
            status=self.status,
            brand=self.brand,
            last4=self.last4,
            fingerprint=self.fingerprint,
            customer_id=self.customer_id,
            created_at=self.created_at,
            detached_at=self.detached_at,
        ).model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class SealedMethod:
    """A saved method with its ciphertext, for charging (None once detached). A card saved
    before migration 0025 may still have its expiry in clear (`legacy_expiry`) until the
    `payment_methods.seal_expiries` job has moved it into the ciphertext."""

    method: PaymentMethod
    data_key_id: UUID | None
    ciphertext: bytes | None = field(repr=False)
    legacy_expiry: tuple[int, int] | None = field(default=None, repr=False)


ChargeSource = CardDetails | CardToken
