"""`engine/db/migrations.py` against a fresh database per test.

Applied versions are recorded with the checksum of their file, re-running applies nothing,
concurrent starters apply each migration exactly once (advisory lock), and a changed file stops
start-up by name, releasing the lock on the way out.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from engine.db import migrations

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "schema" / "migrations"
BOUND_S = 60.0
LOCK_BOUND_S = 10.0


@pytest.fixture
async def conn(fresh_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(fresh_dsn)
    try:
        yield connection
    finally:
        await connection.close()


def shipped_versions() -> list[str]:
    return sorted(path.name.partition("_")[0] for path in MIGRATIONS_DIR.glob("*.sql"))


def file_checksum(version: str) -> str:
    (path,) = MIGRATIONS_DIR.glob(f"{version}_*.sql")
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def recorded(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY 1")
    )


def test_loader_finds_every_shipped_file_in_order() -> None:
    loaded = migrations.load_migrations()
    assert [m.version for m in loaded] == shipped_versions()
    assert loaded[0].version == "0001"
    assert loaded[0].name == "core"
    assert loaded[0].checksum == file_checksum("0001")


async def test_migrate_applies_0001_and_records_version_and_checksum(
    conn: asyncpg.Connection,
) -> None:
    assert await conn.fetchval("SELECT to_regclass('transactions')") is None
    applied = await migrations.migrate(conn)
    assert applied == shipped_versions()
    assert "0001" in applied
    rows = await recorded(conn)
    assert [(r["version"], r["checksum"]) for r in rows] == [
        (v, file_checksum(v)) for v in shipped_versions()
    ]
    assert all(r["applied_at"] is not None for r in rows)
    for table in ("api_keys", "customers", "transactions", "audit_logs", "events"):
        assert await conn.fetchval("SELECT to_regclass($1)::text", table) == table


async def test_second_run_applies_nothing(conn: asyncpg.Connection) -> None:
    await migrations.migrate(conn)
    before = await recorded(conn)
    assert await migrations.migrate(conn) == []
    assert await recorded(conn) == before


async def test_concurrent_migrations_apply_each_version_exactly_once(fresh_dsn: str) -> None:
    conns = [await asyncpg.connect(fresh_dsn) for _ in range(3)]
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(migrations.migrate(c) for c in conns)), BOUND_S
        )
        applied = [version for result in results for version in result]
        assert sorted(applied) == shipped_versions()
        assert sorted(map(len, results)) == [0, 0, len(shipped_versions())]
        rows = await recorded(conns[0])
        assert [r["version"] for r in rows] == shipped_versions()
    finally:
        for c in conns:
            await c.close()


async def test_changed_migration_stops_by_name_and_releases_the_lock(fresh_dsn: str) -> None:
    first = await asyncpg.connect(fresh_dsn)
    second = await asyncpg.connect(fresh_dsn)
    try:
        await migrations.migrate(first)
        await first.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = '0001'")
        with pytest.raises(migrations.MigrationError, match=r"0001_core\.sql") as caught:
            await migrations.migrate(first)
        assert caught.value.code == "migration_error"
        # Had the lock leaked, this would block on pg_advisory_lock instead of failing alike.
        with pytest.raises(migrations.MigrationError, match=r"0001_core\.sql"):
            await asyncio.wait_for(migrations.migrate(second), LOCK_BOUND_S)
        checksum = await first.fetchval(
            "SELECT checksum FROM schema_migrations WHERE version = '0001'"
        )
        assert checksum == "x", "a failed check must not rewrite history"
    finally:
        await first.close()
        await second.close()


async def test_status_lists_pending_then_applied(conn: asyncpg.Connection) -> None:
    pending = await migrations.status(conn)
    assert [(s.version, s.applied_at) for s in pending] == [(v, None) for v in shipped_versions()]

    await migrations.migrate(conn)
    applied_at = {r["version"]: r["applied_at"] for r in await recorded(conn)}
    after = await migrations.status(conn)
    assert [s.version for s in after] == shipped_versions()
    assert after[0].name == "core"
    assert all(s.applied_at is not None for s in after)
    assert {s.version: s.applied_at for s in after} == applied_at


async def test_compatibility_names_pending_newer_and_changed(conn: asyncpg.Connection) -> None:
    fresh = migrations.compatibility(await migrations.status(conn))
    assert not fresh.compatible
    assert fresh.pending[0] == "0001_core"
    assert "pending (paygrid migrate applies them): 0001_core" in fresh.describe()

    await migrations.migrate(conn)
    current = migrations.compatibility(await migrations.status(conn))
    assert (current.compatible, current.pending, current.newer, current.changed) == (
        True,
        [],
        [],
        [],
    )
    assert current.describe() == "compatible with this release"

    await conn.execute(
        "INSERT INTO schema_migrations (version, checksum) VALUES ('9999', 'a newer release')"
    )
    newer = migrations.compatibility(await migrations.status(conn))
    assert (newer.compatible, newer.newer) == (True, ["9999"])
    await conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = '0002'")
    changed = migrations.compatibility(await migrations.status(conn))
    assert (changed.compatible, changed.changed) == (False, ["0002_webhooks"])
    assert changed.describe().splitlines() == [
        "not compatible with this release",
        "changed since applied (start-up refuses): 0002_webhooks",
        "applied by a newer release (unknown here): 9999",
    ]
