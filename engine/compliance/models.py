"""An AML alert as the engine holds it, its projection to the API, and a page of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from schema.api.compliance import AlertPublic
from schema.states import AlertStatus, AmlRule, RuleAction


@dataclass(frozen=True, slots=True)
class Alert:
    id: UUID
    rule: AmlRule
    action: RuleAction
    status: AlertStatus
    customer_id: UUID
    payment_id: UUID
    details: dict[str, Any]
    resolution_note: str | None
    resolved_at: datetime | None
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """The API's alert object (also the `compliance.alert` event's payload)."""
        return AlertPublic(
            id=self.id,
            rule=self.rule,
            action=self.action,
            status=self.status,
            customer_id=self.customer_id,
            payment_id=self.payment_id,
            details=self.details,
            resolution_note=self.resolution_note,
            resolved_at=self.resolved_at,
            created_at=self.created_at,
        ).model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class AlertPage:
    items: list[Alert]
    has_more: bool
