"""Webhook endpoints, deliveries with their attempts, and events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, field_validator

from schema.api.common import Description, Metadata, StrictModel, no_nul
from schema.states import DeliveryStatus, EndpointStatus

EVENT_TYPES = frozenset(
    {
        "payment.succeeded",
        "payment.authorized",
        "payment.captured",
        "payment.voided",
        "payment.refunded",
        "payment.returned",
        "payment.failed",
        "payment.expired",
        "order.created",
        "order.paid",
        "order.partially_refunded",
        "order.refunded",
        "order.cancelled",
        "customer.updated",
        "customer.erased",
        "payment_method.attached",
        "payment_method.detached",
        "subscription.created",
        "subscription.updated",
        "subscription.paused",
        "subscription.resumed",
        "subscription.cancelled",
        "subscription.past_due",
        "subscription.trial_will_end",
        "invoice.created",
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.uncollectible",
        "invoice.voided",
        "compliance.alert",
        "webhook.test",
        "webhook_endpoint.disabled",
    }
)

Url = Annotated[str, Field(min_length=8, max_length=2048), AfterValidator(no_nul)]


def _event_types(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("give at least one event type, or '*'")
    unknown = sorted(set(value) - EVENT_TYPES - {"*"})
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    return sorted(set(value))


class EndpointCreate(StrictModel):
    url: Url
    enabled_events: list[str]
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("enabled_events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        return _event_types(value)


class EndpointUpdate(StrictModel):
    url: Url | None = None
    enabled_events: list[str] | None = None
    description: Description | None = None
    metadata: Metadata | None = None
    # Deleting is its own request (DELETE), never a status change.
    status: Literal[EndpointStatus.ENABLED, EndpointStatus.DISABLED] | None = None

    @field_validator("enabled_events")
    @classmethod
    def _events(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _event_types(value)

    @field_validator("url", "enabled_events", "metadata", "status", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Leave a field out to keep it; null would erase a value the endpoint cannot lack.
        if value is None:
            raise ValueError("may not be null; leave the field out to keep its value")
        return value


class EndpointPublic(BaseModel):
    id: UUID
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str | None
    enabled_events: list[str]
    status: EndpointStatus
    disabled_reason: str | None
    metadata: dict[str, str]
    secret: str | None = Field(
        default=None, description="Shown in full only when created or rotated."
    )
    created_at: datetime
    updated_at: datetime


class AttemptPublic(BaseModel):
    attempted_at: datetime
    http_status: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None


class DeliveryPublic(BaseModel):
    id: UUID
    object: Literal["webhook_delivery"] = "webhook_delivery"
    event_id: UUID
    endpoint_id: UUID
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    attempt_log: list[AttemptPublic]


class BulkRetryCreate(StrictModel):
    endpoint_id: UUID | None = None
    # Only finished deliveries that may be replayed.
    status: Literal[DeliveryStatus.DEAD, DeliveryStatus.FAILED] = DeliveryStatus.DEAD
    since: datetime | None = None
    until: datetime | None = None


class EventPublic(BaseModel):
    id: UUID
    object: Literal["event"] = "event"
    type: str
    created: int
    data: dict[str, Any]
    correlation_id: str | None
