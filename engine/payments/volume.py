"""Payment volume per day for the console's overview: per UTC day and currency, how many
payments were made, how many failed (declines and gateway errors), and the amount of those
that went through. Read from `transactions` (payments only, not their operations) over an
index range of `created_at`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from engine.db.database import Database

DAYS = 14


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


async def daily_volume(
    db: Database, *, days: int = DAYS, clock: Callable[[], datetime] = _utcnow
) -> tuple[list[date], list[DayVolume]]:
    """The last `days` UTC days (today included, oldest first) and their volume rows."""
    today = clock().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    async with db.connection() as conn:
        rows = await VolumeRepository().daily(conn, since=since)
    return [first + timedelta(days=i) for i in range(days)], rows
