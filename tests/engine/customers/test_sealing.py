"""Customers an earlier release left with PII in clear: migration 0014 scrubs the audit trail's
copies and makes the database refuse new clear PII; `seal_clear_rows` (run by `paygrid migrate`
and start-up) seals the old rows and validates the constraint."""

from __future__ import annotations

import os
from uuid import uuid4

import asyncpg
import orjson

from engine.customers.sealing import seal_clear_rows
from engine.customers.service import CustomerService
from engine.db import migrations
from engine.db.database import open_database
from engine.keys.keyring import Keyring
from engine.keys.master import MasterKey
from engine.principal import Principal
from tests.pii_scan import readable

SEALING = "0014"
LEGACY = [
    ("Drusilla.Fenwick@example.com", "Drusilla", "Fenwick", "+44 1632 960111", "Larkspur Yard"),
    ("hobart.quill@example.com", "Hobart", "Quill", None, None),
]


async def _apply_until(conn: asyncpg.Connection, version: str) -> None:
    await migrations.status(conn)
    for migration in migrations.load_migrations():
        if migration.version >= version:
            return
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                migration.version,
                migration.checksum,
            )


async def test_clear_rows_of_an_earlier_release_are_sealed_and_then_refused(
    fresh_dsn: str,
) -> None:
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await _apply_until(conn, SEALING)
        ids = []
        for email, first, last, phone, street in LEGACY:
            address = None if street is None else orjson.dumps({"line1": street}).decode()
            ids.append(
                await conn.fetchval(
                    """INSERT INTO customers (email, first_name, last_name, phone, address)
                       VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id""",
                    email,
                    first,
                    last,
                    phone,
                    address,
                )
            )
        needles = [v for row in LEGACY for v in row if v is not None]
        assert await readable(conn, needles) != []  # in clear, and in the audit trail
        assert await migrations.migrate(conn) == [
            m.version for m in migrations.load_migrations() if m.version >= SEALING
        ]
        # The audit trail's copies are gone; the rows themselves wait for the master key.
        assert {f.split(".")[0] for f in await readable(conn, needles)} == {"customers"}
        validated = "SELECT convalidated FROM pg_constraint WHERE conname = 'pii_sealed_or_erased'"
        assert await conn.fetchval(validated) is False
    finally:
        await conn.close()

    keyring = Keyring(MasterKey(os.urandom(32)))
    db = await open_database(fresh_dsn, min_size=1, max_size=2)
    try:
        assert await seal_clear_rows(db, keyring, batch=1) == 2
        assert await seal_clear_rows(db, keyring) == 0
        customers = CustomerService(db, keyring)
        who = Principal(uuid4(), "req-sealed")
        opened = await customers.get(ids[0], who)
        assert opened.profile is not None
        assert (opened.profile.email, opened.profile.address) == (
            LEGACY[0][0],
            {"line1": "Larkspur Yard"},
        )
        [found], _ = await customers.find_by_email("HOBART.QUILL@example.com", who)
        assert found.id == ids[1]
        async with db.connection() as check:
            assert await readable(check, needles) == []
            assert await check.fetchval(validated) is True
    finally:
        await db.close()
