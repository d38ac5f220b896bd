"""Plan states (`plans.status`, migration 0008): active → archived, never back."""

from __future__ import annotations

from schema.states import BillingInterval, PlanStatus

__all__ = ["BillingInterval", "PlanStatus"]
