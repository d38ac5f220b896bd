"""AML alerts (admin): the list's filters, the resolve request and the alert object."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, StringConstraints

from schema.api.common import NoNul, PageLimit, StrictModel
from schema.states import AlertStatus, AmlRule, RuleAction


class AlertQuery(StrictModel):
    """Filters and page of `GET /api/compliance/alerts`, newest first."""

    rule: AmlRule | None = None
    status: AlertStatus | None = None
    customer_id: UUID | None = None
    limit: PageLimit = 10
    starting_after: UUID | None = None


class AlertResolve(StrictModel):
    """`POST /api/compliance/alerts/{id}/resolve`: why the alert is closed."""

    note: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=2000), NoNul]


class AlertPublic(BaseModel):
    """One AML rule hit on a payment (or a refund of it). `details` holds amounts (minor
    units), counts, windows and thresholds: never personal data or any part of a card."""

    id: UUID
    object: Literal["compliance_alert"] = "compliance_alert"
    rule: AmlRule
    action: RuleAction
    status: AlertStatus
    customer_id: UUID
    payment_id: UUID
    details: dict[str, Any]
    resolution_note: str | None
    resolved_at: datetime | None
    created_at: datetime
