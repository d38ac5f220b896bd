"""Prices and plans as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.money import Money
from engine.plans.states import BillingInterval, PlanStatus
from schema.api.plans import PlanPublic


@dataclass(frozen=True, slots=True)
class Price:
    """An amount per period of `interval_count` times `interval`."""

    amount: int
    currency: str
    interval: BillingInterval
    interval_count: int

    def money(self, quantity: int = 1) -> Money:
        return Money(self.amount * quantity, self.currency)


@dataclass(frozen=True, slots=True)
class NewPlan:
    price: Price
    name: str | None = None
    trial_period_days: int = 0
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    id: UUID
    name: str | None
    price: Price
    trial_period_days: int
    status: PlanStatus
    metadata: dict[str, str]
    created_at: datetime
    archived_at: datetime | None

    def public(self) -> dict[str, Any]:
        """The API's plan object as JSON-ready values."""
        return PlanPublic(
            id=self.id,
            name=self.name,
            amount=self.price.amount,
            currency=self.price.currency,
            interval=self.price.interval,
            interval_count=self.price.interval_count,
            trial_period_days=self.trial_period_days,
            status=self.status,
            metadata=self.metadata,
            created_at=self.created_at,
            archived_at=self.archived_at,
        ).model_dump(mode="json")
