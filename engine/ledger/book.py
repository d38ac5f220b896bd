"""The shard's in-memory ledger: balances of the customers it has touched lately.

A cache, never the only copy: each customer is loaded from PostgreSQL on first use, moved only by
entries whose transaction has committed, and evicted after an idle period.

Writers never wait for readers, and several transactions may commit at once (a pipelined shard):
entries are additive, so their order does not matter; what matters is that each is counted
exactly once. A write marks its customers before it commits and again once its entries are
applied (`writing`). A load is cached only if no write of that customer was between its marks at
any moment of the load; otherwise the load may or may not have seen that commit, so its sum is
answered once but not kept, and the next read loads again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from uuid import UUID

from engine.db.database import Database
from engine.ledger.entries import Balance, Entry, LedgerRepository


def _copy(balances: dict[str, Balance]) -> dict[str, Balance]:
    return {c: Balance(b.held, b.captured, b.refunded) for c, b in balances.items()}


class LedgerBook:
    def __init__(
        self,
        db: Database,
        repository: LedgerRepository,
        *,
        idle_evict_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._repository = repository
        self._idle_evict_s = idle_evict_s
        self._clock = clock
        self._balances: dict[UUID, dict[str, Balance]] = {}
        self._touched: dict[UUID, float] = {}
        # Per customer while a write or a load of it is in progress: writes between their
        # marks, loads running, and a generation bumped at every mark.
        self._writing: dict[UUID, int] = {}
        self._loading: dict[UUID, int] = {}
        self._marks: dict[UUID, int] = {}

    async def balances(self, customer_id: UUID) -> dict[str, Balance]:
        """The customer's balances per currency, loading them on first use. The caller gets
        its own copy: later commits never change an answer already given."""
        self._touched[customer_id] = self._clock()
        cached = self._balances.get(customer_id)
        if cached is not None:
            return _copy(cached)
        clean = customer_id not in self._writing
        mark = self._marks.get(customer_id, 0)
        self._loading[customer_id] = self._loading.get(customer_id, 0) + 1
        try:
            async with self._db.connection() as conn:
                read = await self._repository.balances(conn, customer_id=customer_id)
        finally:
            self._loading[customer_id] -= 1
            if not self._loading[customer_id]:
                del self._loading[customer_id]
            keep = clean and self._marks.get(customer_id, 0) == mark
            self._untrack(customer_id)
        cached = self._balances.get(customer_id)
        if cached is not None:
            return _copy(cached)  # a concurrent load of the customer was kept first
        if keep:
            self._balances[customer_id] = read
        return _copy(read)

    @contextmanager
    def writing(self, customers: Iterable[UUID] = ()) -> Iterator[Write]:
        """Wrap a transaction that writes entries of `customers` (more may be added to the
        yielded `Write` before the commit) and the `committed` call after its commit. If the
        block fails, the commit may or may not have happened: the customers are dropped from
        the cache and their next read sums the database."""
        write = Write(self)
        write.add(customers)
        try:
            yield write
        except BaseException:
            for customer_id in write.customers:
                self.forget(customer_id)
            raise
        finally:
            for customer_id in write.customers:
                self._marks[customer_id] += 1
                self._writing[customer_id] -= 1
                if not self._writing[customer_id]:
                    del self._writing[customer_id]
                self._untrack(customer_id)

    def committed(self, entries: Iterable[Entry]) -> None:
        """Apply entries whose transaction has committed (inside `writing`). Customers not
        cached are skipped: their first read sums the database, which holds these entries."""
        for entry in entries:
            cached = self._balances.get(entry.customer_id)
            if cached is not None:
                cached.setdefault(entry.currency, Balance()).apply(entry)

    def forget(self, customer_id: UUID) -> None:
        """Drop a customer whose cached balances may be stale."""
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

    def _mark(self, customer_id: UUID) -> None:
        self._writing[customer_id] = self._writing.get(customer_id, 0) + 1
        self._marks[customer_id] = self._marks.get(customer_id, 0) + 1

    def _untrack(self, customer_id: UUID) -> None:
        # Marks matter only while a load compares them: keep them no longer than that.
        if customer_id not in self._writing and customer_id not in self._loading:
            self._marks.pop(customer_id, None)


class Write:
    """The customers of one write in progress (see `LedgerBook.writing`)."""

    def __init__(self, book: LedgerBook) -> None:
        self._book = book
        self.customers: set[UUID] = set()

    def add(self, customers: Iterable[UUID]) -> None:
        """Mark more customers as written by this transaction; call before it commits."""
        for customer_id in customers:
            if customer_id not in self.customers:
                self.customers.add(customer_id)
                self._book._mark(customer_id)
