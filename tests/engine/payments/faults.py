"""Faults injected into a test's own database, for the paths that only a failing statement
reaches (a finalize transaction that cannot commit)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

from engine.db.database import Database


@asynccontextmanager
async def ledger_refuses(db: Database, customer_id: UUID) -> AsyncIterator[None]:
    """While the block runs, the database refuses any ledger entry of `customer_id` (a CHECK
    constraint of this customer alone, not checked against the rows already there), so a
    finalize that books one fails and rolls back."""
    name = f"test_refuses_{customer_id.hex}"
    async with db.connection() as conn:
        await conn.execute(
            f"ALTER TABLE ledger_entries ADD CONSTRAINT {name} "
            f"CHECK (customer_id <> '{customer_id}'::uuid) NOT VALID"
        )
    try:
        yield
    finally:
        async with db.connection() as conn:
            await conn.execute(f"ALTER TABLE ledger_entries DROP CONSTRAINT {name}")
