"""SQL of customers and orders. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from engine.customers.models import NewCustomer
from engine.customers.states import OrderStatus
from engine.principal import Principal


@dataclass(frozen=True, slots=True)
class OrderRef:
    id: UUID
    customer_id: UUID
    currency: str
    status: OrderStatus


class CustomerRepository:
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
