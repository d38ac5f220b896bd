"""What the money path left in the database, read with plain SQL (never through the code under
test), and the one ledger check every test makes: the ledger entries, the payments' running
balances and the shard's ledger book agree, on the values the test expects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from engine.db.database import Database
from engine.ledger.entries import Balance
from engine.payments.service import PaymentService


class Shard(Protocol):
    """What the ledger check reads: the database and the shard's service (a `Rig` is one)."""

    @property
    def db(self) -> Database: ...

    @property
    def service(self) -> PaymentService: ...


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: str
    response_status: int | None
    response_body: dict[str, Any] | None
    resource_id: UUID | None


async def payment_row(db: Database, payment_id: UUID | str) -> asyncpg.Record:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM transactions WHERE id = $1 AND parent_id IS NULL", UUID(str(payment_id))
        )
    assert row is not None, f"no payment {payment_id}"
    return row


async def operations(db: Database, payment_id: UUID | str) -> list[tuple[str, str, int]]:
    """(type, status, amount) of the payment's capture, void and refund rows, oldest first."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            """SELECT transaction_type, status, amount FROM transactions
               WHERE parent_id = $1 ORDER BY created_at, amount""",
            UUID(str(payment_id)),
        )
    return [(r["transaction_type"], r["status"], r["amount"]) for r in rows]


async def refunds(db: Database, payment_id: UUID | str) -> list[tuple[int, str]]:
    """(amount, status) of the payment's refunds rows, oldest first."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            """SELECT amount, status FROM refunds WHERE transaction_id = $1
               ORDER BY created_at, amount""",
            UUID(str(payment_id)),
        )
    return [(r["amount"], r["status"]) for r in rows]


async def event_types(db: Database, payment_id: UUID | str) -> list[str]:
    """The outbox events about the payment, oldest first."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT event_type FROM events WHERE object_id = $1 ORDER BY created_at, event_type",
            UUID(str(payment_id)),
        )
    return [r["event_type"] for r in rows]


async def last_event_payload(db: Database, payment_id: UUID | str) -> dict[str, Any]:
    async with db.connection() as conn:
        payload: dict[str, Any] | None = await conn.fetchval(
            "SELECT payload FROM events WHERE object_id = $1 ORDER BY created_at DESC LIMIT 1",
            UUID(str(payment_id)),
        )
    assert payload is not None
    return payload


async def stored_answer(db: Database, api_key_id: UUID, key: str) -> StoredAnswer:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            """SELECT status, response_status, response_body, resource_id FROM idempotency_keys
               WHERE api_key_id = $1 AND idempotency_key = $2""",
            api_key_id,
            key,
        )
    assert row is not None, f"no idempotency record for {key}"
    return StoredAnswer(
        row["status"], row["response_status"], row["response_body"], row["resource_id"]
    )


async def stored_answers(db: Database, api_key_id: UUID, key: str) -> int:
    """How many idempotency records the key has (0 or 1)."""
    async with db.connection() as conn:
        count: int = await conn.fetchval(
            """SELECT count(*) FROM idempotency_keys
               WHERE api_key_id = $1 AND idempotency_key = $2""",
            api_key_id,
            key,
        )
    return count


async def count_payments(
    db: Database, customer_id: UUID | str, *, status: str | None = None
) -> int:
    """How many payments the customer has (in `status`, if given)."""
    async with db.connection() as conn:
        count: int = await conn.fetchval(
            """SELECT count(*) FROM transactions
               WHERE customer_id = $1 AND parent_id IS NULL
                 AND ($2::transaction_status IS NULL OR status = $2)""",
            UUID(str(customer_id)),
            status,
        )
    return count


async def ledger_entries(db: Database, customer_id: UUID | str) -> list[tuple[str, int]]:
    """(account, amount) of the customer's ledger entries, sorted."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            "SELECT account, amount FROM ledger_entries WHERE customer_id = $1",
            UUID(str(customer_id)),
        )
    return sorted((r["account"], r["amount"]) for r in rows)


async def expect_ledger(
    rig: Shard,
    customer_id: UUID | str,
    *,
    held: int = 0,
    captured: int = 0,
    refunded: int = 0,
    currency: str = "USD",
) -> None:
    """The ledger entries sum to the expected balances, so do the customer's payments
    (capturable, captured, refunded), and so does the shard's book."""
    customer = UUID(str(customer_id))
    expected = Balance(held, captured, refunded)
    async with rig.db.connection() as conn:
        entries = await conn.fetchrow(
            """SELECT
                   coalesce(sum(amount) FILTER (WHERE account = 'held'), 0)::bigint AS held,
                   coalesce(sum(amount) FILTER (WHERE account = 'captured'), 0)::bigint
                       AS captured,
                   coalesce(sum(amount) FILTER (WHERE account = 'refunded'), 0)::bigint
                       AS refunded
               FROM ledger_entries WHERE customer_id = $1 AND currency = $2""",
            customer,
            currency,
        )
        payments = await conn.fetchrow(
            """SELECT coalesce(sum(amount_capturable), 0)::bigint AS held,
                      coalesce(sum(amount_captured), 0)::bigint AS captured,
                      coalesce(sum(amount_refunded), 0)::bigint AS refunded
               FROM transactions
               WHERE customer_id = $1 AND currency = $2 AND parent_id IS NULL""",
            customer,
            currency,
        )
    assert entries is not None
    assert payments is not None
    assert Balance(entries["held"], entries["captured"], entries["refunded"]) == expected
    assert Balance(payments["held"], payments["captured"], payments["refunded"]) == expected
    booked = (await rig.service.balances(customer)).get(currency, Balance())
    assert booked == expected
