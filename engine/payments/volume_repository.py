"""SQL for payment volume per day: `transactions` (payments only, not their operations) over an
index range of `created_at`, grouped by UTC day and currency. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class DayVolume:
    """One UTC day's payments in one currency; `amount` in minor units."""

    day: date
    currency: str
    payments: int
    failed: int
    amount: int


class VolumeRepository:
    async def daily(self, conn: asyncpg.Connection, *, since: datetime) -> list[DayVolume]:
        """Payments created since `since`, per UTC day and currency, oldest first."""
        rows = await conn.fetch(
            """SELECT (created_at AT TIME ZONE 'UTC')::date AS day, currency,
                      count(*) AS payments,
                      count(*) FILTER (WHERE status = 'failed') AS failed,
                      coalesce(sum(amount) FILTER (
                          WHERE status NOT IN ('failed', 'processing')), 0) AS amount
               FROM transactions
               WHERE parent_id IS NULL AND created_at >= $1
               GROUP BY 1, 2 ORDER BY 1, 2""",
            since,
        )
        return [
            DayVolume(r["day"], r["currency"], r["payments"], r["failed"], int(r["amount"]))
            for r in rows
        ]
