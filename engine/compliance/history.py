"""Each customer's recent purchases and authorizations, in the shard's memory.

Bounded three ways: attempts older than the longest rule window are dropped when the customer
is next touched, a customer keeps at most `per_customer` attempts, and the shard keeps at most
`max_customers` customers, the least recently active evicted first (and those with nothing left
in the window swept out as a matter of course), like the ledger book's idle customers.

Warm start: a shard that starts loads its customers' attempts within the longest window from
the database once, before it serves (`AmlMonitor.warm`), so a pattern straddling a restart is
still seen; their cards are unknown (nothing of a card is stored that could tell them apart),
so the distinct cards rule counts only cards seen since the start. A customer evicted while
the shard runs is not reloaded (that would cost its next batch a query): its earlier attempts
are forgotten, as its ledger is, for at most one window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from engine.compliance.rules import Attempt

_SWEEP_EVERY = 1024


class AttemptHistory:
    def __init__(self, *, memory: timedelta, max_customers: int, per_customer: int = 512) -> None:
        self._memory = memory
        self._max_customers = max_customers
        self._per_customer = per_customer
        # Ordered by last activity, oldest first: eviction pops from the front.
        self._attempts: dict[UUID, deque[Attempt]] = {}
        self._since_sweep = 0

    def recent(self, customer_id: UUID, now: datetime) -> Sequence[Attempt]:
        """The customer's attempts within the longest window before `now`, oldest first (a
        live view: read it before the next `record`)."""
        attempts = self._attempts.get(customer_id)
        if attempts is None:
            return ()
        since = now - self._memory
        while attempts and attempts[0].at <= since:
            attempts.popleft()
        return attempts

    def record(self, customer_id: UUID, attempt: Attempt) -> None:
        """Remember an attempt; recording the same payment again (a retried finalize) changes
        nothing."""
        attempts = self._attempts.pop(customer_id, None)
        if attempts is None:
            attempts = deque(maxlen=self._per_customer)
        elif attempts and attempts[-1].payment_id == attempt.payment_id:
            # A customer's payments finish one at a time: a repeat can only be the last one.
            self._attempts[customer_id] = attempts
            return
        attempts.append(attempt)
        self._attempts[customer_id] = attempts
        self._since_sweep += 1
        if self._since_sweep >= _SWEEP_EVERY or len(self._attempts) > self._max_customers:
            self._sweep(attempt.at)

    def __len__(self) -> int:
        return len(self._attempts)

    def _sweep(self, now: datetime) -> None:
        """Drop the least recently active customers while they are over the bound or hold
        nothing within the window any more."""
        self._since_sweep = 0
        since = now - self._memory
        while self._attempts:
            oldest = next(iter(self._attempts))
            stale = self._attempts[oldest][-1].at <= since
            if not stale and len(self._attempts) <= self._max_customers:
                break
            del self._attempts[oldest]
