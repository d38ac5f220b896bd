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
    """A migration as this release ships it and as the database recorded it. `name` is None
    for a version the database holds but this release has no file for (a newer release
    applied it); `checksum` is the recorded one once applied, the file's while pending."""

    version: str
    name: str | None
    applied_at: datetime | None
    checksum: str
    file_checksum: str | None

    @property
    def changed(self) -> bool:
        """Applied, but its file differs from what was applied (start-up refuses to run)."""
        return self.applied_at is not None and self.file_checksum not in (None, self.checksum)


@dataclass(frozen=True, slots=True)
class Compatibility:
    """Whether this release's code can run on the database's schema: never with a changed
    applied migration (start-up refuses), and only once what is pending is applied. Migrations
    a newer release applied are reported but allowed: they follow expand/contract, so the
    release before still runs on the expanded schema during a rolling upgrade."""

    pending: list[str]
    newer: list[str]
    changed: list[str]

    @property
    def compatible(self) -> bool:
        return not (self.pending or self.changed)

    def describe(self) -> str:
        """The verdict, then one line per finding."""
        lines = []
        if self.changed:
            lines.append(f"changed since applied (start-up refuses): {', '.join(self.changed)}")
        if self.newer:
            lines.append(f"applied by a newer release (unknown here): {', '.join(self.newer)}")
        if self.pending:
            lines.append(f"pending (paygrid migrate applies them): {', '.join(self.pending)}")
        verdict = "compatible" if self.compatible else "not compatible"
        return "\n".join([f"{verdict} with this release", *lines])


def compatibility(found: list[MigrationStatus]) -> Compatibility:
    """What `status` says about running this release on the database."""
    return Compatibility(
        pending=[f"{m.version}_{m.name}" for m in found if m.applied_at is None],
        newer=[m.version for m in found if m.name is None],
        changed=[f"{m.version}_{m.name}" for m in found if m.changed],
    )


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
    """Every migration, shipped or recorded, in version order: when it was applied (None while
    pending) and its checksum."""
    await _ensure_table(conn)
    applied = {
        r["version"]: r
        for r in await conn.fetch("SELECT version, checksum, applied_at FROM schema_migrations")
    }
    shipped = {m.version: m for m in load_migrations()}
    found = []
    for version in sorted(shipped.keys() | applied.keys()):
        migration, row = shipped.get(version), applied.get(version)
        found.append(
            MigrationStatus(
                version=version,
                name=None if migration is None else migration.name,
                applied_at=None if row is None else row["applied_at"],
                # A version is recorded, shipped, or both: with no row, the file is here.
                checksum=row["checksum"] if row is not None else shipped[version].checksum,
                file_checksum=None if migration is None else migration.checksum,
            )
        )
    return found


async def migrate_dsn(dsn: str) -> list[str]:
    """`migrate` on a connection of its own to `dsn`."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
