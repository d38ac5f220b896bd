"""The billing engine's one clock source.

Real time comes from an injected callable (tests move it); a customer on a test clock lives at
the clock's frozen time instead, so every decision about a subscription (is a period over, is a
retry due) reads the time through here and a year of billing runs in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from engine.test_clocks.repository import TestClockRepository

WallClock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class BillingClock:
    def __init__(self, now: WallClock = utc_now) -> None:
        self._now = now
        self._clocks = TestClockRepository()

    def now(self) -> datetime:
        """Real time (the injected wall clock)."""
        return self._now()

    async def customer_now(self, conn: asyncpg.Connection, *, customer_id: UUID) -> datetime:
        """The time the customer lives at: its test clock's, or real time."""
        frozen = await self._clocks.frozen_time_of_customer(conn, customer_id=customer_id)
        return self._now() if frozen is None else frozen
