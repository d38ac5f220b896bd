"""Database operations on a real database: health names no host, port or user; migrations show
their recorded checksums and which are pending; statistics total the `transaction_summary`
view over bounded, validated day ranges."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlsplit

import orjson
import pytest

from engine.database_admin.models import migrations_public
from engine.database_admin.service import DatabaseAdmin
from engine.db import migrations
from engine.db.database import Database, open_database
from engine.errors import InvalidRequest
from schema.api.database import StatsQuery
from tests.engine.records.rows import customer, insert

NOW = datetime(2026, 3, 31, 18, tzinfo=UTC)


def admin(database: Database) -> DatabaseAdmin:
    return DatabaseAdmin(database, clock=lambda: NOW)


async def test_health_reports_the_pool_and_names_no_server(
    database: Database, module_dsn: str
) -> None:
    health = await admin(database).health()
    assert health.latency_ms >= 0
    assert re.fullmatch(r"\d+(\.\d+)*", health.server_version)
    pool = health.pool
    assert pool.min_size <= pool.size <= pool.max_size
    assert pool.in_use == pool.size - pool.idle >= 0
    text = orjson.dumps(health.public()).decode()
    parts = urlsplit(module_dsn)
    for secret in (parts.hostname, str(parts.port), parts.username, parts.path.strip("/")):
        if secret:
            assert secret not in text


@pytest.fixture
async def fresh_database(fresh_dsn: str) -> AsyncIterator[Database]:
    db = await open_database(fresh_dsn, min_size=1, max_size=2)
    try:
        yield db
    finally:
        await db.close()


async def test_migrations_show_checksums_and_what_is_pending(fresh_database: Database) -> None:
    service = admin(fresh_database)
    shipped = migrations.load_migrations()
    before = migrations_public(await service.migrations())
    assert before["applied"] == []
    assert [m["version"] for m in before["pending"]] == [m.version for m in shipped]

    async with fresh_database.connection() as conn:
        await migrations.migrate(conn)
        last = shipped[-1].version
        await conn.execute("DELETE FROM schema_migrations WHERE version = $1", last)
        await conn.execute(
            "UPDATE schema_migrations SET checksum = 'edited' WHERE version = $1",
            shipped[0].version,
        )
        await conn.execute("INSERT INTO schema_migrations (version, checksum) VALUES ('9999', 'x')")
    after = migrations_public(await service.migrations())
    applied = {m["version"]: m for m in after["applied"]}
    assert [m["version"] for m in after["pending"]] == [last]
    assert after["pending"][0]["checksum"] == shipped[-1].checksum
    assert applied[shipped[0].version]["status"] == "changed"
    assert applied["9999"] == {
        "version": "9999",
        "name": None,
        "status": "unknown",
        "checksum": "x",
        "applied_at": applied["9999"]["applied_at"],
    }
    second = shipped[1]
    assert applied[second.version]["status"] == "applied"
    assert applied[second.version]["checksum"] == hashlib.sha256(second.sql.encode()).hexdigest()
    assert applied[second.version]["applied_at"] is not None


async def test_stats_total_the_view_over_whole_utc_days(database: Database) -> None:
    service = admin(database)
    owner = await customer(database)
    last_day = datetime(2026, 3, 31, tzinfo=UTC)
    await insert(database, owner, created_at=last_day + timedelta(hours=23, minutes=59), amount=7)
    await insert(database, owner, created_at=last_day - timedelta(days=29), amount=100)
    await insert(database, owner, created_at=last_day - timedelta(days=29), amount=50)
    await insert(database, owner, created_at=last_day - timedelta(days=2), status="failed")
    await insert(database, owner, created_at=last_day - timedelta(days=3), currency="EUR")
    # A microsecond before the default range: outside it.
    await insert(database, owner, created_at=last_day - timedelta(days=29, microseconds=1))

    stats = await service.stats(StatsQuery())
    assert (stats.first_day, stats.last_day) == (date(2026, 3, 2), date(2026, 3, 31))
    totals = {(t.transaction_type, t.status, t.currency): (t.count, t.amount) for t in stats.totals}
    assert totals == {
        ("purchase", "succeeded", "USD"): (3, 157),
        ("purchase", "failed", "USD"): (1, 1000),
        ("purchase", "succeeded", "EUR"): (1, 1000),
    }
    tables = {t.table: t for t in stats.tables}
    assert tables["transactions"].row_count == 6
    assert tables["customers"].row_count == 1
    assert all(t.total_bytes > 0 for t in stats.tables)
    assert stats.public()["from"] == "2026-03-02"

    one_day = await service.stats(
        StatsQuery.model_validate({"from": "2026-03-31", "to": "2026-03-31"})
    )
    assert [(t.count, t.amount) for t in one_day.totals] == [(1, 7)]


@pytest.mark.parametrize(
    ("bounds", "param"),
    [
        ({"from": "2026-03-02", "to": "2026-03-01"}, "to"),
        ({"from": "2025-03-30", "to": "2026-03-31"}, "from"),
        ({"from": "2020-01-01"}, "from"),
    ],
)
async def test_reversed_or_unbounded_ranges_are_named(
    database: Database, bounds: dict[str, str], param: str
) -> None:
    with pytest.raises(InvalidRequest) as bad:
        await admin(database).stats(StatsQuery.model_validate(bounds))
    assert bad.value.param == param


async def test_a_whole_leap_year_is_allowed(database: Database) -> None:
    query = StatsQuery.model_validate({"from": "2024-01-01", "to": "2024-12-31"})
    stats = await admin(database).stats(query)
    assert (stats.last_day - stats.first_day).days + 1 == 366
