"""SQL of customers and orders. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from engine.customers.models import Consent, NewCustomer
from engine.customers.states import OrderStatus
from engine.principal import Principal


@dataclass(frozen=True, slots=True)
class OrderRef:
    id: UUID
    customer_id: UUID
    currency: str
    status: OrderStatus


@dataclass(frozen=True, slots=True)
class CustomerRow:
    """A customers row: sealed PII (`data_key_id`, `ciphertext`) or, for customers a purchase
    created inline, PII in clear (`clear`)."""

    id: UUID
    data_key_id: UUID | None
    ciphertext: bytes | None
    clear: dict[str, Any]
    consent: Consent | None
    metadata: dict[str, str]
    test_clock_id: UUID | None
    created_at: datetime


_ROW_COLUMNS = """id, email, first_name, last_name, phone, address, data_key_id, ciphertext,
    consent_version, consent_at, metadata, test_clock_id, created_at"""


def _row(row: asyncpg.Record) -> CustomerRow:
    consent = (
        None
        if row["consent_version"] is None
        else Consent(row["consent_version"], row["consent_at"])
    )
    clear = {k: row[k] for k in ("email", "first_name", "last_name", "phone", "address")}
    return CustomerRow(
        id=row["id"],
        data_key_id=row["data_key_id"],
        ciphertext=row["ciphertext"],
        clear=clear,
        consent=consent,
        metadata=row["metadata"],
        test_clock_id=row["test_clock_id"],
        created_at=row["created_at"],
    )


class CustomerRepository:
    async def insert_sealed(
        self,
        conn: asyncpg.Connection,
        *,
        customer_id: UUID,
        data_key_id: UUID,
        ciphertext: bytes,
        email_index: bytes,
        consent: Consent,
        metadata: dict[str, str],
        test_clock_id: UUID | None,
        principal: Principal,
    ) -> CustomerRow:
        """Create a customer whose PII is sealed; no column holds it in clear."""
        row = await conn.fetchrow(
            f"""INSERT INTO customers (id, data_key_id, ciphertext, email_index, consent_version,
                    consent_at, metadata, test_clock_id, api_key_id, correlation_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                RETURNING {_ROW_COLUMNS}""",
            customer_id,
            data_key_id,
            ciphertext,
            email_index,
            consent.version,
            consent.accepted_at,
            metadata,
            test_clock_id,
            principal.api_key_id,
            principal.correlation_id,
        )
        return _row(row)

    async def get(self, conn: asyncpg.Connection, *, customer_id: UUID) -> CustomerRow | None:
        row = await conn.fetchrow(
            f"SELECT {_ROW_COLUMNS} FROM customers WHERE id = $1", customer_id
        )
        return None if row is None else _row(row)

    async def by_email(
        self, conn: asyncpg.Connection, *, email_index: bytes, email: str, limit: int
    ) -> list[CustomerRow]:
        """Customers with this email, newest first: sealed ones by the blind index, inline
        ones by their email in clear."""
        rows = await conn.fetch(
            f"""SELECT {_ROW_COLUMNS} FROM customers
                WHERE email_index = $1 OR email = $2
                ORDER BY created_at DESC, id DESC LIMIT $3""",
            email_index,
            email,
            limit,
        )
        return [_row(r) for r in rows]

    async def test_clock_of(self, conn: asyncpg.Connection, *, customer_id: UUID) -> UUID | None:
        """The test clock the customer lives on, if any."""
        clock: UUID | None = await conn.fetchval(
            "SELECT test_clock_id FROM customers WHERE id = $1", customer_id
        )
        return clock

    async def insert_many(
        self, conn: asyncpg.Connection, *, customers: list[tuple[NewCustomer, Principal]]
    ) -> None:
        """Create customers in one statement; a repeat of an id (an idempotent retry) is a
        no-op."""
        if not customers:
            return
        await conn.execute(
            """INSERT INTO customers (id, email, first_name, last_name, phone, address, metadata,
                    api_key_id, correlation_id)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                                    $6::jsonb[], $7::jsonb[], $8::uuid[], $9::text[])
               ON CONFLICT (id) DO NOTHING""",
            [c.id for c, _ in customers],
            [c.email for c, _ in customers],
            [c.first_name for c, _ in customers],
            [c.last_name for c, _ in customers],
            [c.phone for c, _ in customers],
            [c.address for c, _ in customers],
            [c.metadata for c, _ in customers],
            [a.api_key_id for _, a in customers],
            [a.correlation_id for _, a in customers],
        )

    async def existing(self, conn: asyncpg.Connection, *, customer_ids: list[UUID]) -> set[UUID]:
        """Which of `customer_ids` exist."""
        rows = await conn.fetch("SELECT id FROM customers WHERE id = ANY($1::uuid[])", customer_ids)
        return {r["id"] for r in rows}

    async def orders(
        self, conn: asyncpg.Connection, *, order_ids: list[UUID]
    ) -> dict[UUID, OrderRef]:
        rows = await conn.fetch(
            "SELECT id, customer_id, currency, status FROM orders WHERE id = ANY($1::uuid[])",
            order_ids,
        )
        return {
            r["id"]: OrderRef(
                r["id"], r["customer_id"], r["currency"].strip(), OrderStatus(r["status"])
            )
            for r in rows
        }
