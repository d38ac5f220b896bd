"""API keys over HTTP: creating one (its secret shown in that answer only), listing, rotating.

A key's `allowed_ips` are networks in CIDR form (`203.0.113.0/24`, `2001:db8::/32`, or one
address); its `rate_limit` is `<count>/s`, `<count>/m`, `<count>/h` or `unlimited`, and left
out it follows the deployment's tiers.
"""

from __future__ import annotations

from datetime import datetime
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, WithJsonSchema

from schema.api.common import NoNul, StrictModel
from schema.states import Scope

MAX_ALLOWED_IPS = 100
MAX_GRACE_S = 30 * 24 * 3600


def _network(value: str) -> str:
    try:
        return str(ip_network(value, strict=False))
    except ValueError as exc:
        raise ValueError(f"'{value}' is not an IP address or CIDR network") from exc


# JSON Schema has formats for addresses, none for networks: `ip-network` names the rule.
Cidr = Annotated[
    str,
    StringConstraints(strict=True, max_length=64),
    AfterValidator(_network),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 64,
            "format": "ip-network",
            "description": "An IP address or a CIDR network (host bits are cleared).",
        }
    ),
]
RateLimitText = Annotated[
    str, StringConstraints(strict=True, pattern=r"^(unlimited|[1-9][0-9]{0,8}/[smh])$")
]


class ApiKeyCreate(StrictModel):
    name: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100), NoNul]
    scopes: list[Scope] = Field(min_length=1, max_length=len(Scope))
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
    allowed_ips: list[Cidr] | None = Field(default=None, min_length=1, max_length=MAX_ALLOWED_IPS)
    rate_limit: RateLimitText | None = None

    def networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(ip_network(n) for n in self.allowed_ips or ())


class ApiKeyRotate(StrictModel):
    grace_period_s: int | None = Field(
        default=None,
        ge=0,
        le=MAX_GRACE_S,
        description="How long the old secret keeps working; the deployment's default if left out.",
    )


class ApiKeyPublic(BaseModel):
    id: UUID
    name: str
    prefix: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_at: datetime | None
    last_used_at: datetime | None
    allowed_ips: list[str] | None
    rate_limit: str | None


class ApiKeyCreated(ApiKeyPublic):
    secret: str = Field(description="The key itself: shown in this answer only, never again.")
