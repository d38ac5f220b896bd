"""Queue statistics and switches for operators. Queues are views over their durable tables;
pausing is a row in `queue_state`, so it survives restarts and every worker obeys it. Clearing
only ever removes finished items, never work waiting or in flight. Every switch and clear is
audited."""

from __future__ import annotations

from collections.abc import Sequence

from engine.db.database import Database
from engine.errors import InvalidRequest
from engine.principal import Principal
from engine.queueing.models import QueueStats
from engine.queueing.repository import QueueRepository
from engine.queueing.spec import QueueSpec
from engine.queueing.states import CLEARED_STATUS, ClearableState, QueueName


class QueueService:
    def __init__(self, db: Database, specs: Sequence[QueueSpec]) -> None:
        self._db = db
        self._queues = {spec.name: QueueRepository(spec) for spec in specs}

    @property
    def names(self) -> list[QueueName]:
        return list(self._queues)

    async def stats(self) -> list[QueueStats]:
        async with self._db.connection() as conn:
            return [await queue.stats(conn) for queue in self._queues.values()]

    async def backlog(self, *, limit: int) -> dict[str, int]:
        """Per queue, due items waiting to be claimed, counted up to `limit` (cheap enough for
        every health check, whatever the backlog)."""
        async with self._db.connection() as conn:
            return {
                name: await queue.backlog(conn, limit=limit) for name, queue in self._queues.items()
            }

    async def set_paused(
        self, queue: QueueName | None, paused: bool, principal: Principal
    ) -> list[QueueName]:
        """Pause or resume one queue, or all when none is named; the names it applied to."""
        chosen = [self._queue(queue)] if queue is not None else list(self._queues.values())
        async with self._db.transaction() as conn:
            for repository in chosen:
                await repository.set_paused(conn, paused=paused)
                await repository.record_action(
                    conn, action="pause" if paused else "resume", details={}, principal=principal
                )
        return [repository.spec.name for repository in chosen]

    async def clear(self, queue: QueueName, state: ClearableState, principal: Principal) -> int:
        """Delete the finished items of `queue` in `state`; returns how many."""
        repository = self._queue(queue)
        async with self._db.transaction() as conn:
            removed = await repository.clear(conn, status=CLEARED_STATUS[state])
            await repository.record_action(
                conn,
                action="clear",
                details={"state": str(state), "removed": removed},
                principal=principal,
            )
        return removed

    def _queue(self, name: QueueName) -> QueueRepository:
        if name not in self._queues:
            known = ", ".join(self._queues)
            raise InvalidRequest(f"unknown queue '{name}'; known: {known}", param="queue")
        return self._queues[name]
