"""SQL of backups: the exported snapshot, what the manifest counts, and whether a target
database is empty. Never commits."""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

from engine.errors import BackupError

_CURRENCY = re.compile(r"[A-Z]{3}")
_ACCOUNT = re.compile(r"[a-z_]{1,40}")


@dataclass(frozen=True, slots=True)
class ReplicationSettings:
    """What a base backup needs of the server and of the connected role."""

    wal_level: str
    max_wal_senders: int
    can_replicate: bool
    user: str


class BackupRepository:
    async def export_snapshot(self, conn: asyncpg.Connection) -> str:
        """The id of the caller's (repeatable read) transaction's snapshot, for pg_dump."""
        return await conn.fetchval("SELECT pg_export_snapshot()")  # type: ignore[no-any-return]

    async def tables(self, conn: asyncpg.Connection) -> list[str]:
        """Every table of the public schema, by name."""
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        return [r["tablename"] for r in rows]

    async def row_counts(self, conn: asyncpg.Connection, *, tables: list[str]) -> dict[str, int]:
        """The exact row count of each table."""
        counts = {}
        for table in tables:
            ident = await conn.fetchval("SELECT quote_ident($1)", table)
            counts[table] = await conn.fetchval(f"SELECT count(*) FROM public.{ident}")
        return counts

    async def ledger_totals(self, conn: asyncpg.Connection) -> dict[str, dict[str, int]]:
        """The sum of ledger entries per currency and account, in minor units."""
        rows = await conn.fetch(
            """SELECT currency, account, sum(amount)::bigint AS total FROM ledger_entries
               GROUP BY currency, account ORDER BY currency, account"""
        )
        totals: dict[str, dict[str, int]] = {}
        for r in rows:
            totals.setdefault(r["currency"].strip(), {})[r["account"]] = r["total"]
        return totals

    async def applied_migrations(self, conn: asyncpg.Connection) -> dict[str, str]:
        """Each applied migration's version and checksum."""
        try:
            rows = await conn.fetch("SELECT version, checksum FROM schema_migrations ORDER BY 1")
        except asyncpg.UndefinedTableError:
            raise BackupError(
                "the database has no paygrid schema (no schema_migrations): nothing to back up"
            ) from None
        return {r["version"]: r["checksum"] for r in rows}

    async def wal_lsn(self, conn: asyncpg.Connection) -> str:
        """The server's WAL position (read in the manifest's snapshot): where it writes, or on
        a standby (which has none of its own) where its replay has reached."""
        return str(
            await conn.fetchval(
                """SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                               ELSE pg_current_wal_lsn() END::text"""
            )
        )

    async def replication_settings(self, conn: asyncpg.Connection) -> ReplicationSettings:
        """The server's wal_level and max_wal_senders, and whether the role may replicate."""
        row = await conn.fetchrow(
            """SELECT current_setting('wal_level') AS wal_level,
                      current_setting('max_wal_senders')::int AS max_wal_senders,
                      (rolsuper OR rolreplication) AS can_replicate, current_user AS who
               FROM pg_roles WHERE rolname = current_user"""
        )
        assert row is not None
        return ReplicationSettings(
            row["wal_level"], row["max_wal_senders"], row["can_replicate"], row["who"]
        )

    async def server_version_num(self, conn: asyncpg.Connection) -> int:
        """The server's version as a number (150020 for 15.20)."""
        return int(await conn.fetchval("SHOW server_version_num"))


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def restore_check_sql(row_counts: dict[str, int], ledger_totals: dict[str, dict[str, int]]) -> str:
    """A statement that raises, naming the difference, unless the database holds exactly the
    manifest's row counts and ledger totals (run last in the restore's transaction, so a
    mismatch rolls the restore back). Names are quoted, currencies and accounts checked."""
    checks = []
    for table, count in sorted(row_counts.items()):
        checks.append(
            f"SELECT count(*) INTO n FROM public.{_ident(table)};\n"
            f"IF n <> {int(count)} THEN RAISE EXCEPTION 'restore check: table % has % rows, "
            f"the manifest says {int(count)}', {_literal(table)}, n; END IF;"
        )
    groups = 0
    for currency, accounts in sorted(ledger_totals.items()):
        for account, total in sorted(accounts.items()):
            if not (_CURRENCY.fullmatch(currency) and _ACCOUNT.fullmatch(account)):
                raise BackupError(f"the manifest names a bad ledger {currency!r}/{account!r}")
            groups += 1
            checks.append(
                "SELECT coalesce(sum(amount), 0) INTO n FROM public.ledger_entries "
                f"WHERE currency = '{currency}' AND account = '{account}';\n"
                f"IF n <> {int(total)} THEN RAISE EXCEPTION 'restore check: the ledger total "
                f"of {currency} {account} is %, the manifest says {int(total)}', n; END IF;"
            )
    checks.append(
        "SELECT count(*) INTO n FROM "
        "(SELECT DISTINCT currency, account FROM public.ledger_entries) g;\n"
        f"IF n <> {groups} THEN RAISE EXCEPTION 'restore check: the ledger has % currency and "
        f"account totals, the manifest {groups}', n; END IF;"
    )
    body = "\n".join(checks)
    return f"DO $restore_check$\nDECLARE n numeric;\nBEGIN\n{body}\nEND\n$restore_check$;\n"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
