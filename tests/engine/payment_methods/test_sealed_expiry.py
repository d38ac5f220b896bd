"""A saved card's expiry lives only sealed in the vault, with its number: never in a clear
column, an answer, an event or an audit row. A card saved before migration 0025 (expiry in
clear columns) still opens for a charge, and the `payment_methods.seal_expiries` job moves its
expiry into the ciphertext, once, and strips it from the card's audit rows."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import orjson
import pytest

from engine.cards import CardDetails
from engine.db import migrations
from engine.db.database import Database
from engine.keys.cipher import row_binding
from engine.keys.keyring import Keyring
from engine.keys.master import MasterKey
from engine.payment_methods.models import NewCard
from engine.payment_methods.service import KEY_PURPOSE, SEAL_EXPIRIES_JOB, PaymentMethodService
from engine.payments.commands import RequestContext
from schema.api.payment_method_ids import parse_payment_method_id
from tests.engine.payments.test_card_summaries import _migrate_before
from tests.engine.rows import add_customer

VISA = "4242424242424242"
CTX = RequestContext(uuid4(), "req-expiry")


@pytest.fixture
def keyring() -> Keyring:
    return Keyring(MasterKey(os.urandom(32)))


@pytest.fixture
def vault(database: Database, keyring: Keyring) -> PaymentMethodService:
    return PaymentMethodService(database, keyring, idempotency_ttl_h=24)


async def _save(vault: PaymentMethodService, database: Database) -> tuple[UUID, UUID]:
    async with database.connection() as conn:
        customer = await add_customer(conn)
    result = await vault.attach(NewCard(VISA, 11, 2033), customer_id=customer, ctx=CTX)
    assert result.status_code == 200, result.body
    return parse_payment_method_id(result.body["id"]), customer


async def _clear_expiry_copies(database: Database, method_id: UUID) -> list[str]:
    """Where an expiry of the method shows outside its ciphertext."""
    async with database.connection() as conn:
        return [
            r["place"]
            for r in await conn.fetch(
                """SELECT 'column' AS place FROM payment_methods
                   WHERE id = $1 AND exp_month IS NOT NULL
                   UNION ALL
                   SELECT 'audit' FROM audit_logs
                   WHERE entity_id = $1 AND (old_values::text || new_values::text) ~ '"exp_'
                   UNION ALL
                   SELECT 'event' FROM events WHERE object_id = $1 AND payload::text ~ '"exp_'""",
                method_id,
            )
        ]


async def test_a_saved_cards_expiry_is_only_in_its_ciphertext(
    vault: PaymentMethodService, database: Database
) -> None:
    method_id, customer = await _save(vault, database)

    assert await _clear_expiry_copies(database, method_id) == []
    assert "exp_month" not in (await vault.get(method_id)).public()
    opened = await vault.charge_source(method_id, customer)
    assert isinstance(opened, CardDetails)
    assert (opened.number, opened.exp_month, opened.exp_year) == (VISA, 11, 2033)


async def test_a_card_saved_before_0025_opens_and_is_resealed_once(
    vault: PaymentMethodService, database: Database, keyring: Keyring
) -> None:
    method_id, customer = await _save(vault, database)
    # As migration 0025 found it: the expiry in clear, the ciphertext without it.
    async with database.transaction() as conn:
        key = await keyring.customer_key(conn, purpose=KEY_PURPOSE, customer_id=customer)
        aad = row_binding("payment_methods", "ciphertext", method_id, customer)
        old = key.encrypt(orjson.dumps({"number": VISA, "holder_name": None}), aad=aad)
        await conn.execute(
            """UPDATE payment_methods SET ciphertext = $2, exp_month = 11, exp_year = 2033
               WHERE id = $1""",
            method_id,
            old,
        )
    assert await _clear_expiry_copies(database, method_id) == ["column", "audit"]
    legacy = await vault.charge_source(method_id, customer)
    assert isinstance(legacy, CardDetails)
    assert (legacy.exp_month, legacy.exp_year) == (11, 2033)

    assert await vault.seal_expiries() == 1
    assert await vault.seal_expiries() == 0

    assert await _clear_expiry_copies(database, method_id) == []
    resealed = await vault.charge_source(method_id, customer)
    assert isinstance(resealed, CardDetails)
    assert (resealed.number, resealed.exp_month, resealed.exp_year) == (VISA, 11, 2033)
    assert SEAL_EXPIRIES_JOB in vault.handlers()


async def test_migration_0025_clears_what_needs_no_expiry_and_queues_the_reseal(
    fresh_dsn: str,
) -> None:
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await _migrate_before(conn, "0025")
        customer = await add_customer(conn)
        key_id = await conn.fetchval(
            """INSERT INTO data_keys (id, purpose, customer_id, master_key_id, wrapped_key)
               VALUES (gen_random_uuid(), 'payment_methods', $1, '0123456789abcdef', $2)
               RETURNING id""",
            customer,
            bytes(61),
        )
        ids = {}
        for name, kind, status in (
            ("card", "card", "attached"),
            ("token", "token", "attached"),
            ("detached", "card", "detached"),
        ):
            attached = status == "attached"
            ids[name] = await conn.fetchval(
                """INSERT INTO payment_methods (id, customer_id, type, status, brand, last4,
                       exp_month, exp_year, fingerprint, data_key_id, ciphertext, detached_at)
                   VALUES (gen_random_uuid(), $1, $2, $3, 'visa', '4242', 12, 2034,
                           'fp-' || md5(random()::text), $4, $5, $6)
                   RETURNING id""",
                customer,
                kind,
                status,
                key_id if attached else None,
                b"sealed" if attached else None,
                None if attached else datetime.now(UTC),
            )
        await conn.execute(
            """INSERT INTO events (event_type, object_type, object_id, payload)
               VALUES ('payment_method.attached', 'payment_method', $1,
                       '{"last4": "4242", "exp_month": 12, "exp_year": 2034}')""",
            ids["card"],
        )

        assert "0025" in await migrations.migrate(conn)

        clear = {
            r["id"]: r["exp_month"]
            for r in await conn.fetch("SELECT id, exp_month FROM payment_methods")
        }
        assert clear == {ids["card"]: 12, ids["token"]: None, ids["detached"]: None}
        copies = await conn.fetchval(
            """SELECT count(*) FROM audit_logs WHERE entity_type = 'payment_methods'
                 AND (old_values::text || coalesce(new_values::text, '')) ~ '"exp_'"""
        )
        assert copies == 0
        assert await conn.fetchval("SELECT count(*) FROM events WHERE payload::text ~ 'exp_'") == 0
        queued = await conn.fetch(
            "SELECT kind FROM scheduled_jobs WHERE kind = $1 AND status = 'pending'",
            SEAL_EXPIRIES_JOB,
        )
        assert len(queued) == 1
    finally:
        await conn.close()
