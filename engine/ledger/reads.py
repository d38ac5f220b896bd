"""A customer's ledger for the API: held, captured, refunded and net per currency, answered by
the shard that owns the customer (its book is the freshest copy). The shard call is injected,
so this module knows nothing of Ray."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from engine.customers.repository import CustomerRepository
from engine.db.database import Database
from engine.errors import NotFound
from engine.ledger.entries import Balance

BalancesOf = Callable[[UUID], Awaitable[dict[str, Balance]]]


class LedgerReads:
    def __init__(
        self, db: Database, balances_of: BalancesOf, customers: CustomerRepository | None = None
    ) -> None:
        self._db = db
        self._balances_of = balances_of
        self._customers = customers or CustomerRepository()

    async def summary(self, customer_id: UUID) -> dict[str, Balance]:
        """Balances per currency, sorted by currency; NotFound for an unknown customer."""
        async with self._db.connection() as conn:
            known = await self._customers.existing(conn, customer_ids=[customer_id])
        if not known:
            raise NotFound(f"no customer {customer_id}", param="customer_id")
        balances = await self._balances_of(customer_id)
        return dict(sorted(balances.items()))
