"""Customers created on their own: PII sealed at rest under the customer's data key, found by
email through a keyed blind index, readable back; rectified, and every read of it audited."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest

from engine.customers.models import Consent, CustomerRecord, Profile, ProfileChange
from engine.customers.service import CustomerService
from engine.db.database import Database
from engine.errors import CryptoError, NotFound
from engine.keys.keyring import Keyring
from engine.keys.master import MasterKey
from engine.principal import Principal

WHO = Principal(uuid4(), "req-customers")
CONSENT = Consent("terms-2026-11", datetime(2026, 11, 1, tzinfo=UTC))
PROFILE = Profile(
    "Ottoline.Brackenbury@example.com",
    "Ottoline",
    "Brackenbury",
    "+44 20 7946 0958",
    {"line1": "12 Quillon Lane", "city": "Dunwich", "country": "GB"},
)


@pytest.fixture
def customers(database: Database) -> CustomerService:
    return CustomerService(database, Keyring(MasterKey(os.urandom(32))))


async def test_pii_is_ciphertext_at_rest_and_reads_back(
    customers: CustomerService, database: Database
) -> None:
    created = await customers.create(CustomerRecord(PROFILE, CONSENT, {"tier": "gold"}), WHO)
    assert created.profile == PROFILE
    again = await customers.get(created.id, WHO)
    assert again.profile == PROFILE
    assert again.consent == CONSENT
    assert again.public()["email"] == PROFILE.email
    async with database.connection() as conn:
        row = await conn.fetchrow("SELECT * FROM customers WHERE id = $1", created.id)
        audit = await conn.fetch(
            """SELECT new_values::text AS v, action FROM audit_logs WHERE entity_id = $1
               ORDER BY created_at""",
            created.id,
        )
        purpose = await conn.fetchval(
            "SELECT purpose FROM data_keys WHERE id = $1", row["data_key_id"]
        )
    assert purpose == "customer_pii"
    for column in ("email", "first_name", "last_name", "phone", "address"):
        assert row[column] is None
    raw = bytes(row["ciphertext"]) + bytes(row["email_index"])
    for secret in ("Ottoline", "Brackenbury", "7946", "Quillon", "example.com"):
        assert secret.encode() not in raw
        assert all(secret not in a["v"] for a in audit)
    assert [a["action"] for a in audit] == ["INSERT", "READ"]
    assert "email_index" not in audit[0]["v"]
    assert "ciphertext" not in audit[0]["v"]


async def test_ciphertext_moved_to_another_customer_does_not_open(
    customers: CustomerService, database: Database
) -> None:
    first = await customers.create(CustomerRecord(PROFILE, CONSENT), WHO)
    other = Profile("someone@example.org", "Some", "One")
    second = await customers.create(CustomerRecord(other, CONSENT), WHO)
    async with database.connection() as conn:
        await conn.execute(
            """UPDATE customers SET ciphertext = (SELECT ciphertext FROM customers WHERE id = $1),
                   data_key_id = (SELECT data_key_id FROM customers WHERE id = $1)
               WHERE id = $2""",
            first.id,
            second.id,
        )
    with pytest.raises(CryptoError):
        await customers.get(second.id, WHO)


async def test_email_lookup_by_blind_index_any_case_with_cursor_pages(
    customers: CustomerService, database: Database
) -> None:
    created = [await customers.create(CustomerRecord(PROFILE, CONSENT), WHO) for _ in range(3)]
    await customers.create(CustomerRecord(Profile("other@example.com", "O", "T"), CONSENT), WHO)
    newest_first = [c.id for c in reversed(created)]
    first, more = await customers.find_by_email("ottoline.brackenbury@EXAMPLE.com", WHO, limit=2)
    assert ([c.id for c in first], more) == (newest_first[:2], True)
    assert first[0].profile == PROFILE
    rest, more = await customers.find_by_email(
        PROFILE.email, WHO, limit=2, starting_after=first[-1].id
    )
    assert ([c.id for c in rest], more) == (newest_first[2:], False)
    assert await customers.find_by_email("nobody@example.com", WHO) == ([], False)
    async with database.connection() as conn:
        reads = await conn.fetch(
            """SELECT entity_id, new_values FROM audit_logs
               WHERE action = 'READ' AND correlation_id = $1""",
            WHO.correlation_id,
        )
    assert sorted(r["entity_id"] for r in reads) == sorted(newest_first)
    assert {r["new_values"]["via"] for r in reads} == {"email_lookup"}


async def test_rectification_reseals_reindexes_and_is_audited(
    customers: CustomerService, database: Database
) -> None:
    created = await customers.create(CustomerRecord(PROFILE, CONSENT), WHO)
    editor = Principal(uuid4(), "req-rectify")
    change = ProfileChange(frozenset({"email", "phone"}), email="otto.new@example.net", phone=None)
    updated = await customers.rectify(created.id, change, editor)
    expected = Profile("otto.new@example.net", "Ottoline", "Brackenbury", None, PROFILE.address)
    assert updated.profile == expected
    assert (await customers.get(created.id, WHO)).profile == expected
    assert await customers.find_by_email(PROFILE.email, WHO) == ([], False)
    [found], _ = await customers.find_by_email("OTTO.NEW@example.net", WHO)
    assert found.id == created.id
    async with database.connection() as conn:
        audit = await conn.fetchrow(
            """SELECT new_values::text AS v, api_key_id FROM audit_logs
               WHERE entity_id = $1 AND action = 'UPDATE'""",
            created.id,
        )
        event = await conn.fetchrow(
            "SELECT payload FROM events WHERE object_id = $1 AND event_type = 'customer.updated'",
            created.id,
        )
    assert audit["api_key_id"] == editor.api_key_id
    assert "otto.new" not in audit["v"]
    assert event["payload"]["fields"] == ["email", "phone"]


async def test_reads_of_a_profile_are_audited(
    customers: CustomerService, database: Database
) -> None:
    created = await customers.create(CustomerRecord(PROFILE, CONSENT), WHO)
    reader = Principal(uuid4(), "req-read")
    await customers.get(created.id, reader)
    async with database.connection() as conn:
        [read] = await conn.fetch(
            "SELECT * FROM audit_logs WHERE entity_id = $1 AND action = 'READ'", created.id
        )
    assert (read["entity_type"], read["api_key_id"], read["correlation_id"]) == (
        "customers",
        reader.api_key_id,
        "req-read",
    )
    assert read["new_values"] == {"fields": "profile", "via": "retrieve"}


async def test_unknown_customer_and_unknown_test_clock(customers: CustomerService) -> None:
    with pytest.raises(NotFound):
        await customers.get(uuid4(), WHO)
    with pytest.raises(NotFound):
        await customers.rectify(uuid4(), ProfileChange(frozenset({"phone"})), WHO)
    with pytest.raises(NotFound) as missing:
        await customers.create(CustomerRecord(PROFILE, CONSENT, test_clock_id=uuid4()), WHO)
    assert missing.value.param == "test_clock"


async def test_database_refuses_pii_in_clear(
    customers: CustomerService, database: Database
) -> None:
    created = await customers.create(CustomerRecord(PROFILE, CONSENT), WHO)
    async with database.connection() as conn:
        for column, value in (("email", "'x@example.com'"), ("first_name", "'Ada'")):
            with pytest.raises(asyncpg.CheckViolationError, match="pii_sealed_or_erased"):
                await conn.execute(
                    f"UPDATE customers SET {column} = {value} WHERE id = $1", created.id
                )
        with pytest.raises(asyncpg.CheckViolationError, match="pii_sealed_or_erased"):
            await conn.execute("INSERT INTO customers (email) VALUES ('in-clear@example.com')")
        with pytest.raises(asyncpg.CheckViolationError, match="pii_sealed_or_erased"):
            await conn.execute("INSERT INTO customers DEFAULT VALUES")
        validated = await conn.fetchval(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'pii_sealed_or_erased'"
        )
    assert validated
