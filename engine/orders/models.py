"""Orders as the domain sees them, and their projection to the API's order object."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.orders.states import OrderStatus
from schema.api.orders import OrderPublic


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order to create for an existing customer."""

    customer_id: UUID
    amount: int
    currency: str
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Order:
    """An `orders` row: the amount owed and the totals of the payments naming it."""

    id: UUID
    customer_id: UUID
    amount: int
    currency: str
    status: OrderStatus
    amount_paid: int
    amount_refunded: int
    description: str | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    def public(self, transactions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The API order object as JSON-ready values; `transactions` (the rendered payments,
        each with its refunds) only in the order's detail."""
        body = OrderPublic(
            id=self.id,
            customer_id=self.customer_id,
            amount=self.amount,
            currency=self.currency,
            status=self.status,
            amount_paid=self.amount_paid,
            amount_refunded=self.amount_refunded,
            description=self.description,
            metadata=self.metadata,
            created_at=self.created_at,
            updated_at=self.updated_at,
        ).model_dump(mode="json")
        body["transactions"] = transactions
        return body


@dataclass(frozen=True, slots=True)
class PayableOrder:
    """An order as a new payment naming it sees it: whose, in what, in which state, and how
    much of its amount payments already hold (captured, or authorized or in flight)."""

    id: UUID
    customer_id: UUID
    currency: str
    status: OrderStatus
    amount: int
    committed: int
