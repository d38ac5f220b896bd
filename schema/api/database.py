"""Database operations for operators: health, migrations, statistics.

Nothing here names a host, port, user or secret: the answers describe the pool and the schema,
never how to reach the server.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from schema.api.common import Day, StrictModel
from schema.states import PaymentStatus, TransactionType

MAX_STATS_DAYS = 366
DEFAULT_STATS_DAYS = 30


class StatsQuery(StrictModel):
    """The days `GET /api/database/stats` totals, both included: by default the last 30
    (`to` today, in UTC); at most 366."""

    from_: Day | None = Field(default=None, alias="from")
    to: Day | None = None


class PoolPublic(BaseModel):
    size: int
    idle: int
    in_use: int
    min_size: int
    max_size: int


class DatabaseHealthPublic(BaseModel):
    status: Literal["ok"] = "ok"
    latency_ms: float
    server_version: str
    pool: PoolPublic


class MigrationPublic(BaseModel):
    """A migration and where it stands. `changed`: applied, but its file differs since;
    `unknown`: applied by a newer release, no file here."""

    version: str
    name: str | None
    status: Literal["applied", "pending", "changed", "unknown"]
    checksum: str
    applied_at: dt.datetime | None


class MigrationsPublic(BaseModel):
    applied: list[MigrationPublic]
    pending: list[MigrationPublic]


class TableStatsPublic(BaseModel):
    table: str
    row_count: int
    total_bytes: int


class TotalPublic(BaseModel):
    transaction_type: TransactionType
    status: PaymentStatus
    currency: str
    count: int
    amount: int


class DatabaseStatsPublic(BaseModel):
    from_: dt.date = Field(serialization_alias="from")
    to: dt.date
    tables: list[TableStatsPublic]
    totals: list[TotalPublic]
