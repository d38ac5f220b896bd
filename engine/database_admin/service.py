"""Database operations: health (pool, round trip, version), where the migrations stand, and
statistics over a bounded range of days.

The statistics' range is whole UTC days, both ends included: by default the last 30 (ending
today by the injected clock), never more than 366, never reversed; a bad range is a 400 naming
the end at fault.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from engine.database_admin.models import DatabaseHealth, DatabaseStats
from engine.database_admin.repository import DatabaseAdminRepository
from engine.db import migrations
from engine.db.database import Database
from engine.db.migrations import MigrationStatus
from engine.errors import InvalidRequest
from schema.api.database import DEFAULT_STATS_DAYS, MAX_STATS_DAYS, StatsQuery


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DatabaseAdmin:
    def __init__(self, db: Database, *, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self._db = db
        self._clock = clock
        self._repository = DatabaseAdminRepository()

    async def health(self) -> DatabaseHealth:
        """The pool's state, one round trip's latency (acquiring excluded) and the server's
        version; `DatabaseUnavailable` if there is no round trip."""
        async with self._db.connection() as conn:
            started = time.perf_counter()
            await self._repository.ping(conn)
            latency_ms = (time.perf_counter() - started) * 1000
            version = await self._repository.server_version(conn)
        return DatabaseHealth(latency_ms, version, self._db.pool_state())

    async def migrations(self) -> list[MigrationStatus]:
        """Every migration, applied (with checksum and time) or pending, in version order."""
        async with self._db.connection() as conn:
            return await migrations.status(conn)

    async def stats(self, query: StatsQuery) -> DatabaseStats:
        """Table sizes and row counts now, and transaction totals over the query's days."""
        first_day, last_day = self._days(query)
        async with self._db.transaction() as conn:
            tables = await self._repository.table_stats(conn)
            totals = await self._repository.totals(conn, first_day=first_day, last_day=last_day)
        return DatabaseStats(first_day, last_day, tables, totals)

    def _days(self, query: StatsQuery) -> tuple[dt.date, dt.date]:
        last_day = query.to or self._clock().astimezone(dt.UTC).date()
        first_day = query.from_ or last_day - dt.timedelta(days=DEFAULT_STATS_DAYS - 1)
        if last_day < first_day:
            raise InvalidRequest("to: must not be before from", param="to")
        if (last_day - first_day).days + 1 > MAX_STATS_DAYS:
            raise InvalidRequest(
                f"from: the range may cover at most {MAX_STATS_DAYS} days", param="from"
            )
        return first_day, last_day
