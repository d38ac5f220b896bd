"""Fixtures of the backup tests: a migrated scratch database of the test's own (dropped after),
the keys backups go under, and what the drill compares: every row of every table."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
import pytest

from engine.backups.envelope import BackupKey
from engine.backups.service import Backups
from engine.db import migrations
from engine.db.database import Database, open_database
from engine.keys.master import decode_master_key
from tests.engine.payments.harness import MASTER_KEY
from tests.engine.webhooks.conftest import answers  # noqa: F401 - the drill's receiver


@dataclass
class Scratch:
    """A database of the test's own on the session's server, and how to replace it."""

    admin_dsn: str
    name: str
    dsn: str

    async def admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def recreate(self) -> None:
        """Drop the database and make it again, empty (the disk lost)."""
        await self.admin(f'DROP DATABASE "{self.name}" WITH (FORCE)')
        await self.admin(f'CREATE DATABASE "{self.name}"')


@pytest.fixture
async def scratch(fresh_dsn: str, infra: dict[str, str]) -> Scratch:
    """A migrated database of this test's own (fresh_dsn's, dropped after the test)."""
    await migrations.migrate_dsn(fresh_dsn)
    return Scratch(infra["database_url"], urlsplit(fresh_dsn).path.lstrip("/"), fresh_dsn)


@pytest.fixture
async def scratch_db(scratch: Scratch) -> AsyncIterator[Database]:
    db = await open_database(scratch.dsn, min_size=1, max_size=4)
    try:
        yield db
    finally:
        await db.close()


KEYS = [BackupKey("master", decode_master_key(MASTER_KEY))]


def backups(dsn: str, keys: list[BackupKey] = KEYS) -> Backups:
    return Backups(dsn, keys)


async def every_row(dsn: str) -> dict[str, list[str]]:
    """Every row of every table as JSON text, sorted: two databases with equal answers hold
    the same data."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public'"
        )
        found = {}
        for row in tables:
            texts = await conn.fetch(f"SELECT row_to_json(x)::text AS j FROM {row['t']} x")
            found[row["t"]] = sorted(json.dumps(json.loads(r["j"]), sort_keys=True) for r in texts)
        return found
    finally:
        await conn.close()
