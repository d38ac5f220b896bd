"""The shard's in-memory ledger: balances of the customers it has touched lately.

A cache, never the only copy: each customer is loaded from PostgreSQL on first use, updated only
after the transaction that wrote the entries commits, and evicted after an idle period.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from uuid import UUID

import asyncpg

from engine.ledger.entries import Balance, Entry, LedgerRepository


class LedgerBook:
    def __init__(
        self,
        repository: LedgerRepository,
        *,
        idle_evict_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._idle_evict_s = idle_evict_s
        self._clock = clock
        self._balances: dict[UUID, dict[str, Balance]] = {}
        self._touched: dict[UUID, float] = {}

    async def balances(self, conn: asyncpg.Connection, customer_id: UUID) -> dict[str, Balance]:
        """The customer's balances per currency, loading them on first use."""
        if customer_id not in self._balances:
            self._balances[customer_id] = await self._repository.balances(
                conn, customer_id=customer_id
            )
        self._touched[customer_id] = self._clock()
        return self._balances[customer_id]

    def committed(self, entries: Iterable[Entry]) -> None:
        """Apply entries whose transaction has committed. Customers not loaded are skipped:
        their first read sums the database, which already holds these entries."""
        for entry in entries:
            loaded = self._balances.get(entry.customer_id)
            if loaded is not None:
                loaded.setdefault(entry.currency, Balance()).apply(entry)

    def forget(self, customer_id: UUID) -> None:
        """Drop a customer whose cached balances may be stale (a batch that failed)."""
        self._balances.pop(customer_id, None)
        self._touched.pop(customer_id, None)

    def evict_idle(self) -> int:
        """Drop customers untouched for the idle period; returns how many."""
        cutoff = self._clock() - self._idle_evict_s
        idle = [c for c, t in self._touched.items() if t < cutoff]
        for customer_id in idle:
            self.forget(customer_id)
        return len(idle)

    def __len__(self) -> int:
        return len(self._balances)
