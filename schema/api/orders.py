"""Orders (the seed's `/api/database/orders`): what a customer owes, paid by the payments that
name it. An order's status and totals follow those payments; the merchant only creates and
cancels."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from schema.api.common import Currency, Description, Metadata, MinorUnits, StrictModel
from schema.api.records import TimeRange, TransactionRecordPublic
from schema.states import OrderStatus


class OrderCreate(StrictModel):
    customer_id: UUID
    amount: MinorUnits
    currency: Currency
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)


class OrderQuery(TimeRange):
    """Filters and page of `GET /api/database/orders`, newest first."""

    customer_id: UUID | None = None
    status: OrderStatus | None = None


class OrderPublic(BaseModel):
    """An order with the totals of its payments; its detail lists those payments (each with
    its refunds) as `transactions`."""

    id: UUID
    object: Literal["order"] = "order"
    customer_id: UUID
    amount: int
    currency: str
    status: OrderStatus
    amount_paid: int
    amount_refunded: int
    description: str | None
    metadata: dict[str, str]
    transactions: list[TransactionRecordPublic] | None = None
    created_at: datetime
    updated_at: datetime
