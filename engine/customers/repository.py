"""SQL of customers and orders. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from engine.actor import Actor
from engine.payments.commands import NewCustomer


@dataclass(frozen=True, slots=True)
class OrderRef:
    id: UUID
    customer_id: UUID
    currency: str
    status: str


class CustomerRepository:
    async def insert(
        self, conn: asyncpg.Connection, *, customer: NewCustomer, actor: Actor
    ) -> None:
        """Create the customer; a repeat of the same id (an idempotent retry) is a no-op."""
        await conn.execute(
            """INSERT INTO customers (id, email, first_name, last_name, phone, address, metadata,
                    api_key_id, correlation_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING""",
            customer.id,
            customer.email,
            customer.first_name,
            customer.last_name,
            customer.phone,
            customer.address,
            customer.metadata,
            actor.api_key_id,
            actor.correlation_id,
        )

    async def exists(self, conn: asyncpg.Connection, *, customer_id: UUID) -> bool:
        return bool(await conn.fetchval("SELECT 1 FROM customers WHERE id = $1", customer_id))

    async def order(self, conn: asyncpg.Connection, *, order_id: UUID) -> OrderRef | None:
        row = await conn.fetchrow(
            "SELECT id, customer_id, currency, status FROM orders WHERE id = $1", order_id
        )
        if row is None:
            return None
        return OrderRef(row["id"], row["customer_id"], row["currency"].strip(), row["status"])
