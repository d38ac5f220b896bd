"""Payment volume per day for the console's overview: per UTC day and currency, how many
payments were made, how many failed (declines and gateway errors), and the amount of those
that went through (`engine/payments/volume_repository.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from engine.db.database import Database
from engine.payments.volume_repository import DayVolume, VolumeRepository

__all__ = ["DAYS", "DayVolume", "daily_volume"]

DAYS = 14


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
