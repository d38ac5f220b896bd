"""API keys as the domain sees them: scopes, where a key may be used from, its own rate limit,
and what a presented secret turned out to be."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any
from uuid import UUID

from engine.errors import PermissionDenied
from engine.ratelimit.limits import KeyRate, rate_text
from schema.api.keys import ApiKeyPublic
from schema.states import AuthFailure, Scope

__all__ = ["ApiKey", "AuthFailure", "Caller", "KeyMatch", "Network", "Scope", "Verdict"]

Network = IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    allowed_networks: tuple[Network, ...] = ()
    rate_limit: KeyRate | None = None
    rotated_at: datetime | None = None
    last_used_at: datetime | None = None

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

    def admits(self, ip: str | None) -> bool:
        """Whether the key may be used from `ip` (any address when it has no allow-list)."""
        if not self.allowed_networks:
            return True
        if ip is None:
            return False
        try:
            address = ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.allowed_networks)

    def public(self) -> dict[str, Any]:
        """The API key object as JSON-ready values: never its secret or its hash."""
        return ApiKeyPublic(
            id=self.id,
            name=self.name,
            prefix=self.prefix,
            scopes=sorted(self.scopes),
            created_at=self.created_at,
            expires_at=self.expires_at,
            revoked_at=self.revoked_at,
            rotated_at=self.rotated_at,
            last_used_at=self.last_used_at,
            allowed_ips=[str(n) for n in self.allowed_networks] or None,
            rate_limit=None if self.rate_limit is None else rate_text(self.rate_limit),
        ).model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """The key a hash belongs to, as of the database's `now`: `hash_expires_at` is set when
    the hash is one the key rotated away from (usable until then)."""

    key: ApiKey
    hash_expires_at: datetime | None
    now: datetime

    def failure(self) -> AuthFailure | None:
        if self.key.revoked_at is not None:
            return AuthFailure.REVOKED
        if self.key.expires_at is not None and self.key.expires_at <= self.now:
            return AuthFailure.EXPIRED
        if self.hash_expires_at is not None and self.hash_expires_at <= self.now:
            return AuthFailure.ROTATED_OUT
        return None

    def usable_for_s(self) -> float | None:
        """Seconds until the key or this hash stops working; None when neither ends."""
        ends = [t for t in (self.key.expires_at, self.hash_expires_at) if t is not None]
        return None if not ends else (min(ends) - self.now).total_seconds()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a presented secret is: a usable key, or why not (with the key when one matched)."""

    key: ApiKey | None
    failure: AuthFailure | None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is knocking, as the audit of failed authentications records it."""

    ip: str | None
    method: str
    path: str
    correlation_id: str
