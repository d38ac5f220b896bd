"""Rows for the read-side tests, written straight to the tables at chosen times."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from engine.db.database import Database
from tests.engine.rows import add_customer

BASE = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def insert(
    db: Database,
    customer_id: UUID,
    *,
    created_at: datetime = BASE,
    amount: int = 1000,
    currency: str = "USD",
    kind: str = "purchase",
    status: str = "succeeded",
    parent_id: UUID | None = None,
) -> UUID:
    """A transactions row at a chosen time; a settled root row has captured its amount."""
    captured = amount if parent_id is None and status in ("succeeded", "captured") else 0
    row_id = uuid4()
    async with db.connection() as conn:
        await conn.execute(
            """INSERT INTO transactions (id, parent_id, customer_id, shard, transaction_type,
                   status, amount, currency, amount_captured, gateway, created_at)
               VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8, 'sandbox', $9)""",
            row_id,
            parent_id,
            customer_id,
            kind,
            status,
            amount,
            currency,
            captured,
            created_at,
        )
    return row_id


async def customer(db: Database) -> UUID:
    async with db.connection() as conn:
        return await add_customer(conn)
