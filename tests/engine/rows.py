"""Row factories for direct-SQL tests: a customer, and a transactions row of any shape.

They bypass the application on purpose, so the tests that use them show what the database itself
accepts or refuses.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg


async def add_customer(conn: asyncpg.Connection) -> UUID:
    """A customer with no profile (as an erased one reads): the database refuses PII in clear,
    and sealing one takes the application's keys."""
    customer_id: UUID = await conn.fetchval(
        "INSERT INTO customers (erased_at) VALUES (now()) RETURNING id"
    )
    return customer_id


async def add_transaction(
    conn: asyncpg.Connection,
    customer_id: UUID,
    *,
    kind: str = "purchase",
    status: str = "succeeded",
    amount: int = 1000,
    parent_id: UUID | None = None,
    currency: str = "USD",
    capturable: int = 0,
    captured: int | None = None,
) -> UUID:
    """A transactions row. Root rows default to a settled purchase (captured = amount);
    operation rows (with `parent_id`) carry no balances."""
    if captured is None:
        captured = amount if parent_id is None and status == "succeeded" else 0
    row_id = uuid4()
    values = (row_id, parent_id, customer_id, kind, status, amount, currency, capturable, captured)
    await conn.execute(
        """INSERT INTO transactions (id, parent_id, customer_id, shard, transaction_type, status,
               amount, currency, amount_capturable, amount_captured, gateway)
           VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8, $9, 'sandbox')""",
        *values,
    )
    return row_id
