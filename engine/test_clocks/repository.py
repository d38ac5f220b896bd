"""SQL of `test_clocks` (migration 0007). Never commits."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from engine.principal import Principal
from engine.test_clocks.models import TestClock
from engine.test_clocks.states import TestClockStatus

_COLUMNS = "id, name, frozen_time, status, created_at"


def _clock(row: asyncpg.Record) -> TestClock:
    return TestClock(
        row["id"],
        row["name"],
        row["frozen_time"],
        TestClockStatus(row["status"]),
        row["created_at"],
    )


class TestClockRepository:
    async def insert(
        self,
        conn: asyncpg.Connection,
        *,
        clock_id: UUID,
        name: str | None,
        frozen_time: datetime,
        principal: Principal,
    ) -> TestClock:
        row = await conn.fetchrow(
            f"""INSERT INTO test_clocks (id, name, frozen_time, api_key_id, correlation_id)
                VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}""",
            clock_id,
            name,
            frozen_time,
            principal.api_key_id,
            principal.correlation_id,
        )
        return _clock(row)

    async def get(
        self, conn: asyncpg.Connection, *, clock_id: UUID, for_update: bool = False
    ) -> TestClock | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM test_clocks WHERE id = $1{lock}", clock_id
        )
        return None if row is None else _clock(row)

    async def frozen_time_of_customer(
        self, conn: asyncpg.Connection, *, customer_id: UUID
    ) -> datetime | None:
        """The time of the customer's test clock; None for a customer on real time."""
        found: datetime | None = await conn.fetchval(
            """SELECT c.frozen_time FROM customers u JOIN test_clocks c ON c.id = u.test_clock_id
               WHERE u.id = $1""",
            customer_id,
        )
        return found

    async def move(
        self,
        conn: asyncpg.Connection,
        *,
        clock_id: UUID,
        frozen_time: datetime,
        status: TestClockStatus,
        principal: Principal,
    ) -> TestClock:
        row = await conn.fetchrow(
            f"""UPDATE test_clocks SET frozen_time = $2, status = $3, updated_at = now(),
                    api_key_id = $4, correlation_id = $5
                WHERE id = $1 RETURNING {_COLUMNS}""",
            clock_id,
            frozen_time,
            status,
            principal.api_key_id,
            principal.correlation_id,
        )
        return _clock(row)
