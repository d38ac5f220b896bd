"""What a payment keeps of its card: brand, BIN, last4 and the vault's fingerprint, never the
expiry (which lives only in the vault of saved payment methods). Shown on the money path (every
table the shard writes, scanned whole) and on migration 0023, which strips the expiry from the
summaries stored before it and from every copy made of them."""

from __future__ import annotations

import json
from datetime import timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from engine.db import migrations
from engine.db.database import Database
from tests.engine.payments.fakes import DROP, decline
from tests.engine.payments.harness import Rig
from tests.summary_rows import insert_customers, insert_payments

CARD_WITH_EXPIRY = {
    "type": "card",
    "brand": "visa",
    "bin": "424242",
    "last4": "4242",
    "exp_month": 12,
    "exp_year": 2034,
}


async def _rows_naming_an_expiry(conn: asyncpg.Connection) -> list[str]:
    """Every row of every table but the vault whose JSON names an expiry key, as `table`."""
    tables = await conn.fetch(
        """SELECT quote_ident(tablename) AS name FROM pg_tables
           WHERE schemaname = 'public' AND tablename <> 'payment_methods'"""
    )
    found = []
    for table in tables:
        hits = await conn.fetchval(
            f"SELECT count(*) FROM {table['name']} AS r "
            """WHERE to_jsonb(r)::text ~ '"exp_(month|year)"'"""
        )
        found += [table["name"]] * hits
    return found


async def test_no_expiry_is_stored_by_the_money_path(rig: Rig) -> None:
    r = rig.requests
    rig.gateway.script(decline("expired_card"))
    await rig.one(r.purchase(1000))
    paid = (await rig.one(r.purchase(2000, key="paid"))).body
    await rig.one(r.refund(paid, 500, key="refund"))
    by_token = (await rig.one(r.purchase(900, token="tok_visa"))).body
    auth = (await rig.one(r.authorize(3000))).body
    await rig.one(r.capture(auth, 1000))
    rig.gateway.script(DROP)
    await rig.one(r.purchase(700, key="lost"))
    rig.clock.advance(timedelta(minutes=1))
    assert await rig.service.recover(older_than=rig.clock.now()) == 1

    for body in (paid, by_token, auth):
        assert set(body["payment_method"]) == {"type", "brand", "last4", "fingerprint"}
    async with rig.db.connection() as conn:
        assert await _rows_naming_an_expiry(conn) == []
        stored = await conn.fetchval(
            "SELECT payment_method FROM transactions WHERE id = $1", UUID(paid["id"])
        )
    assert set(stored) == {"type", "brand", "bin", "last4", "fingerprint"}


async def test_the_same_card_has_the_same_fingerprint_and_another_card_another(rig: Rig) -> None:
    r = rig.requests
    first = (await rig.one(r.purchase(1000))).body["payment_method"]["fingerprint"]
    again = (await rig.one(r.purchase(1000))).body["payment_method"]["fingerprint"]
    other = (await rig.one(r.purchase(1000, number="5555555555554444"))).body["payment_method"]

    assert first == again != other["fingerprint"]


async def test_the_database_refuses_a_summary_with_an_expiry(database: Database) -> None:
    async with database.connection() as conn:
        [customer] = await insert_customers(conn, tag="expiry", count=1)
        await insert_payments(
            conn,
            customers=[customer],
            first=(await conn.fetchval("SELECT current_date")),
            days=1,
            count=1,
        )
        with pytest.raises(asyncpg.CheckViolationError, match="payment_method_has_no_expiry"):
            await conn.execute(
                "UPDATE transactions SET payment_method = $1 WHERE customer_id = $2",
                CARD_WITH_EXPIRY,
                customer,
            )


async def test_migration_0023_strips_the_expiry_from_every_copy(fresh_dsn: str) -> None:
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await _migrate_before(conn, "0023")
        for codec in ("json", "jsonb"):
            await conn.set_type_codec(
                codec, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
        [customer] = await insert_customers(conn, tag="expiry", count=1)
        await insert_payments(
            conn,
            customers=[customer],
            first=await conn.fetchval("SELECT current_date"),
            days=1,
            count=1,
        )
        payment_id = await conn.fetchval(
            "UPDATE transactions SET payment_method = $1 WHERE customer_id = $2 RETURNING id",
            CARD_WITH_EXPIRY,
            customer,
        )
        body = {"id": str(payment_id), "payment_method": CARD_WITH_EXPIRY}
        await conn.execute(
            """INSERT INTO events (event_type, object_type, object_id, payload)
               VALUES ('payment.succeeded', 'payment', $1, $2)""",
            payment_id,
            body,
        )
        await conn.execute(
            """INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, status,
                   response_status, response_body, resource_id)
               VALUES ($1, 'k', '\\x00', 'completed', 200, $2, $3)""",
            uuid4(),
            body,
            payment_id,
        )
        assert await _rows_naming_an_expiry(conn)

        # 0023 and whatever came after it (the later ones leave these rows alone).
        assert (await migrations.migrate(conn))[0] == "0023"

        assert await _rows_naming_an_expiry(conn) == []
        kept = await conn.fetchval(
            "SELECT payment_method FROM transactions WHERE id = $1", payment_id
        )
        assert kept == {"type": "card", "brand": "visa", "bin": "424242", "last4": "4242"}
    finally:
        await conn.close()


async def _migrate_before(conn: asyncpg.Connection, version: str) -> None:
    """Apply, and record as applied, every shipped migration before `version`."""
    await conn.execute(
        """CREATE TABLE schema_migrations (version text PRIMARY KEY, checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    for migration in migrations.load_migrations():
        if migration.version >= version:
            break
        await conn.execute(migration.sql)
        await conn.execute(
            "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
            migration.version,
            migration.checksum,
        )
