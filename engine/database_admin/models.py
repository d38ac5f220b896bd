"""What the database operations report, and their projections to the API's objects. None of
them carries a host name, port, user name or secret."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, Literal

from engine.db.database import PoolState
from engine.db.migrations import MigrationStatus
from schema.api.database import (
    DatabaseHealthPublic,
    DatabaseStatsPublic,
    MigrationPublic,
    MigrationsPublic,
    PoolPublic,
    TableStatsPublic,
    TotalPublic,
)
from schema.states import PaymentStatus, TransactionType


@dataclass(frozen=True, slots=True)
class DatabaseHealth:
    latency_ms: float
    server_version: str
    pool: PoolState

    def public(self) -> dict[str, Any]:
        pool = self.pool
        return DatabaseHealthPublic(
            latency_ms=round(self.latency_ms, 3),
            server_version=self.server_version,
            pool=PoolPublic(
                size=pool.size,
                idle=pool.idle,
                in_use=pool.in_use,
                min_size=pool.min_size,
                max_size=pool.max_size,
            ),
        ).model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class TableStats:
    table: str
    row_count: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class Total:
    """Transactions of one type, status and currency: how many, and their amounts' sum."""

    transaction_type: TransactionType
    status: PaymentStatus
    currency: str
    count: int
    amount: int


@dataclass(frozen=True, slots=True)
class DatabaseStats:
    first_day: dt.date
    last_day: dt.date
    tables: list[TableStats]
    totals: list[Total]

    def public(self) -> dict[str, Any]:
        return DatabaseStatsPublic(
            from_=self.first_day,
            to=self.last_day,
            tables=[TableStatsPublic(**asdict(t)) for t in self.tables],
            totals=[TotalPublic(**asdict(t)) for t in self.totals],
        ).model_dump(mode="json", by_alias=True)


def _standing(item: MigrationStatus) -> Literal["applied", "pending", "changed", "unknown"]:
    if item.applied_at is None:
        return "pending"
    if item.name is None:
        return "unknown"
    return "changed" if item.changed else "applied"


def migrations_public(items: list[MigrationStatus]) -> dict[str, Any]:
    """Applied migrations (with their recorded checksums) and pending ones, in version order."""
    public = [
        MigrationPublic(
            version=m.version,
            name=m.name,
            status=_standing(m),
            checksum=m.checksum,
            applied_at=m.applied_at,
        )
        for m in items
    ]
    return MigrationsPublic(
        applied=[m for m in public if m.status != "pending"],
        pending=[m for m in public if m.status == "pending"],
    ).model_dump(mode="json")
