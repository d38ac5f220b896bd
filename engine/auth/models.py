"""API keys as the domain sees them: scopes and what a key allows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from engine.errors import PermissionDenied


class Scope(StrEnum):
    PAYMENTS_WRITE = "payments:write"
    PAYMENTS_READ = "payments:read"
    SUBSCRIPTIONS = "subscriptions"
    WEBHOOKS = "webhooks"
    CUSTOMERS = "customers"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def allows(self, scope: Scope) -> bool:
        """admin holds every scope; payments:write implies payments:read."""
        return (
            scope in self.scopes
            or Scope.ADMIN in self.scopes
            or (scope is Scope.PAYMENTS_READ and Scope.PAYMENTS_WRITE in self.scopes)
        )

    def require(self, scope: Scope) -> None:
        if not self.allows(scope):
            raise PermissionDenied(f"this API key lacks the '{scope}' scope")
