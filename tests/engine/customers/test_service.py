"""Customers created on their own: PII sealed at rest under the customer's data key, found by
email through a keyed blind index, readable back; inline customers still read and match."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest

from engine.customers.models import Consent, CustomerRecord, Profile
from engine.customers.service import CustomerService
from engine.db.database import Database
from engine.errors import CryptoError, NotFound
from engine.keys.keyring import Keyring
from engine.keys.master import MasterKey
from engine.principal import Principal
from tests.engine.rows import add_customer

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
    again = await customers.get(created.id)
    assert again.profile == PROFILE
    assert again.consent == CONSENT
    assert again.public()["email"] == PROFILE.email
    async with database.connection() as conn:
        row = await conn.fetchrow("SELECT * FROM customers WHERE id = $1", created.id)
        audit = await conn.fetch(
            "SELECT new_values::text AS v FROM audit_logs WHERE entity_id = $1", created.id
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
    assert len(audit) == 1
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
        await customers.get(second.id)


async def test_email_lookup_by_blind_index_any_case_and_inline_customers(
    customers: CustomerService, database: Database
) -> None:
    created = await customers.create(CustomerRecord(PROFILE, CONSENT), WHO)
    await customers.create(CustomerRecord(Profile("other@example.com", "O", "T"), CONSENT), WHO)
    found = await customers.find_by_email("ottoline.brackenbury@EXAMPLE.com")
    assert [c.id for c in found] == [created.id]
    async with database.connection() as conn:
        inline = await add_customer(conn)
        email = await conn.fetchval("SELECT email FROM customers WHERE id = $1", inline)
    [match] = await customers.find_by_email(email)
    assert (match.id, match.profile.email, match.consent) == (inline, email, None)


async def test_unknown_customer_and_unknown_test_clock(customers: CustomerService) -> None:
    with pytest.raises(NotFound):
        await customers.get(uuid4())
    with pytest.raises(NotFound) as missing:
        await customers.create(CustomerRecord(PROFILE, CONSENT, test_clock_id=uuid4()), WHO)
    assert missing.value.param == "test_clock"


async def test_database_refuses_pii_in_both_forms(
    customers: CustomerService, database: Database
) -> None:
    created = await customers.create(CustomerRecord(PROFILE, CONSENT), WHO)
    async with database.connection() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="pii_in_one_form"):
            await conn.execute(
                "UPDATE customers SET email = 'x@example.com' WHERE id = $1", created.id
            )
