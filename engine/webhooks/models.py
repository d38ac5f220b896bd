"""Webhook endpoints, deliveries and their attempts as the domain sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from engine.webhooks.states import DeliveryStatus, EndpointStatus


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: UUID
    url: str
    description: str | None
    enabled_events: list[str]
    status: EndpointStatus
    disabled_reason: str | None
    # Ciphertexts (engine/webhooks/secrets.py); the secrets in clear are never stored.
    secret_sealed: bytes = field(repr=False)
    previous_secret_sealed: bytes | None = field(repr=False)
    previous_secret_until: datetime | None
    failing_since: datetime | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    # The new secret in clear, only on the object a creation or rotation returns (shown once).
    shown_secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery leased by one dispatcher, with what it needs to send it."""

    id: UUID
    event_id: UUID
    event_type: str
    event_created: datetime
    payload: dict[str, Any]
    correlation_id: str | None
    endpoint: Endpoint
    # The secrets that sign it, in clear, opened when the delivery is loaded to be sent.
    signing_secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class RecordedAttempt:
    """One attempt at a delivery, as recorded."""

    attempted_at: datetime
    http_status: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A delivery with its attempts, oldest first."""

    id: UUID
    event_id: UUID
    endpoint_id: UUID
    event_type: str
    status: DeliveryStatus
    attempts: int
    # When the next attempt is due; only while the delivery is pending.
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    attempt_log: tuple[RecordedAttempt, ...]
