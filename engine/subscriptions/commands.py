"""What the subscription API asks of the engine: create a subscription, or change one."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from engine.payment_methods.models import NewCard, NewToken
from engine.plans.models import Price

MethodChoice = NewCard | NewToken | UUID


@dataclass(frozen=True, slots=True)
class NewSubscription:
    customer_id: UUID
    method: MethodChoice
    plan_id: UUID | None = None
    price: Price | None = None
    quantity: int = 1
    trial_period_days: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubscriptionChange:
    """What a PUT changes; None leaves a field as it is."""

    quantity: int | None = None
    plan_id: UUID | None = None
    price: Price | None = None
    method: MethodChoice | None = None
    cancel_at_period_end: bool | None = None
    metadata: dict[str, str] | None = None
    # Charge or credit the unused part of the current period now (else from the next one).
    prorate: bool = False
