"""What a rate limit is: a count per period with a burst, the tiers a route falls in, and the
profiles that set each tier.

A per-key override is written `<count>/<s|m|h>` or `unlimited` (the form the `api_keys`
CHECK constraint allows). A per-second override bursts to twice its count, as the default
tiers do; a per-minute or per-hour one bursts to its count (the whole quota at once, then the
steady rate), as the seed's hourly tiers do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from engine.errors import InvalidRequest

UNLIMITED: Final = "unlimited"
_PERIODS_S = {"s": 1, "m": 60, "h": 3600}
_FORM = re.compile(r"^([1-9][0-9]{0,8})/([smh])$")


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` requests per `period_s` on average, up to `burst` at once."""

    count: int
    period_s: int
    burst: int

    @property
    def interval_us(self) -> int:
        """The time one request uses up, in microseconds (at least 1)."""
        return max(1, self.period_s * 1_000_000 // self.count)

    def __str__(self) -> str:
        unit = {v: k for k, v in _PERIODS_S.items()}.get(self.period_s, f"{self.period_s}s")
        return f"{self.count}/{unit}"


KeyRate = Rate | Literal["unlimited"]
"""A key's own limit: a rate, or no limit at all."""


def parse_rate(raw: str, *, param: str = "rate_limit") -> KeyRate:
    """`5000/s`, `100/m`, `1000/h` or `unlimited`; anything else names `param`."""
    text = raw.strip().lower()
    if text == UNLIMITED:
        return UNLIMITED
    match = _FORM.match(text)
    if match is None:
        raise InvalidRequest(
            "rate_limit must be '<count>/s', '<count>/m', '<count>/h' or 'unlimited'", param=param
        )
    count, unit = int(match.group(1)), match.group(2)
    return Rate(count, _PERIODS_S[unit], count * 2 if unit == "s" else count)


def rate_text(rate: KeyRate) -> str:
    """The stored form of a key's limit."""
    return rate if isinstance(rate, str) else str(rate)


class Tier(StrEnum):
    """Which bucket a request draws from: a key's routes by the scope they need, and the
    failed authentications of one client address."""

    STANDARD = "standard"
    PAYMENTS = "payments"
    ADMIN = "admin"
    UNAUTHENTICATED = "unauthenticated"


@dataclass(frozen=True, slots=True)
class Profile:
    standard: Rate
    payments: Rate
    admin: Rate
    unauthenticated: Rate

    def rate(self, tier: Tier) -> Rate:
        return {
            Tier.STANDARD: self.standard,
            Tier.PAYMENTS: self.payments,
            Tier.ADMIN: self.admin,
            Tier.UNAUTHENTICATED: self.unauthenticated,
        }[tier]


PROFILES: Final = {
    # 100/s sustained per key, bursts to 200; admin routes 10/s; 20/s of failed
    # authentications per client address.
    "default": Profile(
        standard=Rate(100, 1, 200),
        payments=Rate(100, 1, 200),
        admin=Rate(10, 1, 20),
        unauthenticated=Rate(20, 1, 40),
    ),
    # The seed architecture's hourly tiers.
    "seed": Profile(
        standard=Rate(1000, 3600, 1000),
        payments=Rate(500, 3600, 500),
        admin=Rate(100, 3600, 100),
        unauthenticated=Rate(20, 1, 40),
    ),
}
