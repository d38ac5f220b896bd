"""Webhook endpoints, deliveries with their attempts, and events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from schema.api.common import Description, Metadata, NoNul, StrictModel, refuses_null
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

# The shape in the document: http(s), a host without credentials, an optional port. Where the
# host points (it must resolve, to public addresses unless the operator allows private ones)
# is checked when the endpoint is saved, and again at each delivery.
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\[\]:\s\x00]+(:[0-9]{1,4})?([/?#][^\s\x00]*)?$"
Url = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2048,
        json_schema_extra={"pattern": URL_PATTERN},
    ),
    NoNul,
]
# The document lists the types; the validator names the unknown ones it was given.
EventTypeName = Annotated[
    str, WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES | {"*"})})
]
# The `event_type` filter of the event and delivery lists: any spelling (an unknown type finds
# nothing), bounded like every input.
EventTypeFilter = Annotated[str, Field(max_length=64), NoNul]
EnabledEvents = Annotated[
    list[EventTypeName],
    Field(json_schema_extra={"minItems": 1, "description": "Event types, or '*' for all."}),
]


def _event_types(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("give at least one event type, or '*'")
    unknown = sorted(set(value) - EVENT_TYPES - {"*"})
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    return sorted(set(value))


class EndpointCreate(StrictModel):
    url: Url
    enabled_events: EnabledEvents
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("enabled_events")
    @classmethod
    def _events(cls, value: list[str]) -> list[str]:
        return _event_types(value)


class EndpointUpdate(StrictModel):
    # Left out, a field keeps its value; null is refused (the document does not offer it),
    # except for the description, which null clears.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=refuses_null("url", "enabled_events", "metadata", "status"),
    )

    url: Url | None = None
    enabled_events: EnabledEvents | None = None
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
