"""The audit trigger: who acted and why, and never a secret.

Money rows carry their latest actor (`api_key_id`, `correlation_id`) and the trigger records it
row by row, so one transaction holding many requests' writes attributes each correctly. Rows
without those columns fall back to the transaction-local settings `paygrid.api_key_id` and
`paygrid.correlation_id`. API-key rows are audited without their `key_hash`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest

from engine.auth.keys import ApiKeyService, Scope
from engine.db.database import Database
from tests.engine.rows import add_customer, add_transaction


@pytest.fixture
async def conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as connection:
        yield connection


async def test_audit_rows_carry_the_transaction_local_actor(conn: asyncpg.Connection) -> None:
    actor = uuid4()
    async with conn.transaction():
        await conn.execute(
            "SELECT set_config('paygrid.api_key_id', $1, true),"
            " set_config('paygrid.correlation_id', 'req-42', true)",
            str(actor),
        )
        customer = await add_customer(conn)
        payment = await add_transaction(conn, customer)
    unattributed = await add_customer(conn)  # a later transaction: the settings are gone

    audit = "SELECT * FROM audit_logs WHERE entity_id = $1 ORDER BY created_at"
    for entity, table in ((customer, "customers"), (payment, "transactions")):
        (row,) = await conn.fetch(audit, entity)
        assert (row["entity_type"], row["action"]) == (table, "INSERT")
        assert (row["api_key_id"], row["correlation_id"]) == (actor, "req-42")
        assert row["old_values"] is None
        assert row["new_values"]["id"] == str(entity)
    (row,) = await conn.fetch(audit, unattributed)
    assert (row["api_key_id"], row["correlation_id"]) == (None, None)


async def test_row_actors_win_and_are_attributed_row_by_row(conn: asyncpg.Connection) -> None:
    first, second = uuid4(), uuid4()
    async with conn.transaction():
        await conn.execute("SELECT set_config('paygrid.api_key_id', $1, true)", str(uuid4()))
        ids = []
        for actor, correlation in ((first, "req-1"), (second, "req-2")):
            ids.append(
                await conn.fetchval(
                    """INSERT INTO customers (erased_at, api_key_id, correlation_id)
                       VALUES (now(), $1, $2) RETURNING id""",
                    actor,
                    correlation,
                )
            )
    rows = [
        await conn.fetchrow(
            "SELECT api_key_id, correlation_id FROM audit_logs WHERE entity_id = $1", entity
        )
        for entity in ids
    ]
    assert [(r["api_key_id"], r["correlation_id"]) for r in rows] == [
        (first, "req-1"),
        (second, "req-2"),
    ]


async def test_api_key_audit_never_holds_the_key_hash(pool: asyncpg.Pool) -> None:
    keys = ApiKeyService(Database(pool), secret=uuid4().bytes * 2, cache_ttl_s=0)
    key, secret = await keys.create(name="audited", scopes=frozenset({Scope.ADMIN}))
    await keys.revoke(key.id)
    digest = keys.digest(secret)
    await pool.execute("UPDATE api_keys SET key_hash = $2 WHERE id = $1", key.id, digest[::-1])
    await pool.execute("DELETE FROM api_keys WHERE id = $1", key.id)

    rows = await pool.fetch(
        "SELECT action, old_values, new_values FROM audit_logs WHERE entity_id = $1", key.id
    )
    assert sorted(r["action"] for r in rows) == ["DELETE", "INSERT", "UPDATE", "UPDATE"]
    for row in rows:
        for values in (row["old_values"], row["new_values"]):
            if values is not None:
                assert "key_hash" not in values
                assert values["id"] == str(key.id)
    dump = await pool.fetchval(
        "SELECT string_agg(audit_logs::text, ' ') FROM audit_logs WHERE entity_id = $1", key.id
    )
    for secret_form in (digest.hex(), digest[::-1].hex(), secret):
        assert secret_form not in dump
