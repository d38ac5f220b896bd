"""Apply the numbered SQL migrations of `schema/migrations`, each in its own transaction.

Applied versions are recorded in `schema_migrations(version, checksum, applied_at)`. A
session-level advisory lock makes concurrent starters take turns, so exactly one applies each
migration. An applied migration whose file has changed since stops start-up by name: history is
never rewritten silently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

import asyncpg

from engine.errors import PaygridError

_LOCK_ID = 7_320_114_662_001  # arbitrary, constant: the advisory lock of the migration runner


class MigrationError(PaygridError):
    default_code = "migration_error"


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    version: str
    name: str
    applied_at: datetime | None


def load_migrations() -> list[Migration]:
    """Every `NNNN_name.sql` file shipped in `schema/migrations`, in version order."""
    folder = resources.files("schema") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, rest = entry.name.partition("_")
            found.append(Migration(version, rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


async def _ensure_table(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migrations (
               version text PRIMARY KEY,
               checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; returns the versions applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await _ensure_table(conn)
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for migration in load_migrations():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version}_{migration.name}.sql was changed after it "
                        "was applied; restore it and add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    migration.version,
                    migration.checksum,
                )
            applied_now.append(migration.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    return applied_now


async def status(conn: asyncpg.Connection) -> list[MigrationStatus]:
    """Every known migration with when it was applied (None while pending)."""
    await _ensure_table(conn)
    applied = {
        r["version"]: r["applied_at"]
        for r in await conn.fetch("SELECT version, applied_at FROM schema_migrations")
    }
    return [MigrationStatus(m.version, m.name, applied.get(m.version)) for m in load_migrations()]


async def migrate_dsn(dsn: str) -> list[str]:
    """`migrate` on a connection of its own to `dsn`."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
