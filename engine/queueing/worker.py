"""The worker every lease queue runs on: claim as many items as there is room for, run each as
its own task, settle each with the retry policy.

Room is `max_in_flight` items per worker and, in a grouped queue, `per_group` per group: a busy
group is left out of the next claim, so one slow group never holds the slots others need.

Settles are batched (`engine.batching.Coalescer`): items that finish while a batch is being
written form the next batch, settled in one transaction of two statements (the queue's update
and the handler's own rows) however many items it holds. A lone item goes out at once, so this
adds no latency; under load it turns one transaction per item into one per batch. The handler's
side effects run in that same transaction, in the order of their groups, so two workers lock
group rows in the same order and never deadlock. If a batch fails for another reason than the
database being unavailable, its items are settled one by one, so one bad item cannot hold back
the others.

Whatever fails, nothing is lost: an item whose settle did not commit keeps its lease until it
runs out, then any worker takes it again (at least once).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from uuid import UUID

import asyncpg

from engine.batching import Coalescer
from engine.db.database import Database
from engine.errors import DatabaseUnavailable
from engine.metrics.catalogue import QUEUE_ITEMS
from engine.metrics.recorder import NO_METRICS, Metrics
from engine.queueing.policy import Outcome, RetryPolicy, Settlement
from engine.queueing.repository import Lease, QueueRepository

log = logging.getLogger("paygrid.queueing")

T = TypeVar("T")


class Finished(Protocol):
    """What running an item returns: its outcome, and why when it did not succeed."""

    @property
    def outcome(self) -> Outcome: ...

    @property
    def error(self) -> str | None: ...


R = TypeVar("R", bound=Finished)


@dataclass(frozen=True, slots=True)
class Done(Generic[T, R]):
    """An item that ran, with its lease, what it came to, and how it settles."""

    item: T
    lease: Lease
    result: R
    settlement: Settlement


class Handler(Protocol[T, R]):
    """What one queue's items are and how they run."""

    async def load(self, conn: asyncpg.Connection, leases: Sequence[Lease]) -> Mapping[UUID, T]:
        """The items behind fresh leases, by item id (an item gone since is left out)."""
        ...

    async def run(self, item: T) -> R:
        """Do the item's work. The work's own failures are a result (`Outcome.RETRY` or
        `Outcome.FAILED`), not an exception."""
        ...

    async def settled(self, conn: asyncpg.Connection, done: Sequence[Done[T, R]]) -> None:
        """Side effects of settled items, in the transaction that settles them."""
        ...


class Worker(Generic[T, R]):
    def __init__(
        self,
        db: Database,
        queue: QueueRepository,
        handler: Handler[T, R],
        policy: RetryPolicy,
        *,
        max_in_flight: int,
        lease_s: float,
        per_group: int | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._queue = queue
        self._handler = handler
        self._policy = policy
        self._max_in_flight = max_in_flight
        self._lease_s = lease_s
        self._per_group = per_group
        self._busy: Counter[UUID] = Counter()
        self._tasks: set[asyncio.Task[R]] = set()
        self._settles: Coalescer[Done[T, R], Exception | None] = Coalescer(
            self._settle_batch, max_batch=max_in_flight, max_in_flight=2
        )
        # Set whenever an item finishes (there may be room to claim more), and by the waker.
        self.wake = asyncio.Event()
        # Claims run so far, for operators: a worker whose count stands still is stuck.
        self.polls = 0

    @property
    def queue(self) -> QueueRepository:
        return self._queue

    @property
    def lease_s(self) -> float:
        return self._lease_s

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def pump(self) -> int:
        """Claim as many due items as there is room for and start them; returns how many were
        claimed. Does not wait for them."""
        room = self._max_in_flight - len(self._tasks)
        if room <= 0:
            return 0
        self.polls += 1
        async with self._db.connection() as conn:
            leases = await self._queue.claim(
                conn,
                limit=room,
                lease_s=self._lease_s,
                per_group=self._per_group,
                in_flight=self._busy,
            )
            items = await self._handler.load(conn, leases) if leases else {}
        loop = asyncio.get_running_loop()
        for lease in leases:
            item = items.get(lease.id)
            if item is None:  # gone since the claim (deleted with its owner): nothing to run
                continue
            self._take(lease)
            task = loop.create_task(self._process(lease, item))
            self._tasks.add(task)
            task.add_done_callback(self._finished)
        return len(leases)

    async def run_now(self, lease: Lease, item: T) -> R:
        """Run one item the caller leased itself (a test send) and settle it; returns what the
        run came to once the settle has committed."""
        self._take(lease)
        return await self._process(lease, item)

    async def drain(self) -> None:
        """Wait until every item started so far has settled."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _take(self, lease: Lease) -> None:
        if lease.group_id is not None:
            self._busy[lease.group_id] += 1

    def _release(self, lease: Lease) -> None:
        if lease.group_id is not None:
            self._busy[lease.group_id] -= 1
            if self._busy[lease.group_id] <= 0:
                del self._busy[lease.group_id]

    async def _process(self, lease: Lease, item: T) -> R:
        try:
            result = await self._handler.run(item)
        finally:
            self._release(lease)
        self._metrics.inc(QUEUE_ITEMS, (self._queue.spec.name, result.outcome.value))
        settlement = self._policy.settle(lease.id, lease.attempts, result.outcome, result.error)
        failure = await self._settles.submit(Done(item, lease, result, settlement))
        if failure is not None:
            raise failure
        return result

    def _finished(self, task: asyncio.Task[R]) -> None:
        self._tasks.discard(task)
        self.wake.set()
        if task.cancelled():
            return
        exc = task.exception()
        # An outage is logged once by the Database seam, not once per item.
        if exc is not None and not isinstance(exc, DatabaseUnavailable):
            log.error(
                "%s: an item failed; it runs again when its lease runs out",
                self._queue.spec.name,
                exc_info=exc,
            )

    async def _settle_batch(self, batch: list[Done[T, R]]) -> list[Exception | None]:
        try:
            await self._settle(batch)
        except DatabaseUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the item's task, which logs it
            if len(batch) == 1:
                return [exc]
            return [await self._settle_alone(done) for done in batch]
        return [None] * len(batch)

    async def _settle_alone(self, done: Done[T, R]) -> Exception | None:
        # Each item gets its own answer here, an outage included: some may have settled.
        try:
            await self._settle([done])
        except Exception as exc:  # noqa: BLE001 - handed to the item's task, which logs it
            return exc
        return None

    async def _settle(self, batch: list[Done[T, R]]) -> None:
        # In group order, so that two workers lock the same group rows in the same order.
        ordered = sorted(batch, key=lambda d: d.lease.group_id or d.lease.id)
        async with self._db.transaction() as conn:
            await self._queue.settle(conn, settlements=[d.settlement for d in ordered])
            await self._handler.settled(conn, ordered)
