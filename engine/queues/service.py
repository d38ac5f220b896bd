"""Queue statistics and switches. Queues are views over durable tables (`webhooks` over
`webhook_deliveries`, `scheduler` over `scheduled_jobs`); pausing is a row in `queue_state`, so
it survives restarts and every worker obeys it. Clearing only ever removes finished jobs, never
work in flight."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import asyncpg

from engine.errors import InvalidRequest
from engine.principal import Principal
from engine.webhooks.repository import WebhookRepository

QUEUES = ("webhooks", "scheduler")
# The table behind each queue and its timing column.
_TABLES = {
    "webhooks": ("webhook_deliveries", "next_attempt_at"),
    "scheduler": ("scheduled_jobs", "run_at"),
}
CLEARABLE = ("completed", "failed", "dead")
# Delivery statuses behind each clearable queue state.
_STATUS_OF = {"completed": "succeeded", "failed": "failed", "dead": "dead"}


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    paused: bool
    waiting: int
    active: int
    delayed: int
    completed: int
    failed: int
    dead: int
    oldest_waiting_s: float | None
    completed_last_minute: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "paused": self.paused,
            "waiting": self.waiting,
            "active": self.active,
            "delayed": self.delayed,
            "completed": self.completed,
            "failed": self.failed,
            "dead": self.dead,
            "oldest_waiting_s": self.oldest_waiting_s,
            "throughput_per_s_last_minute": round(self.completed_last_minute / 60, 2),
        }


def chosen(queue: str | None) -> tuple[str, ...]:
    """The queues an operator named (all when none), or InvalidRequest."""
    if queue is None:
        return QUEUES
    if queue not in QUEUES:
        raise InvalidRequest(f"unknown queue '{queue}'; known: {', '.join(QUEUES)}", param="queue")
    return (queue,)


class QueueService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._webhooks = WebhookRepository()

    async def stats(self) -> list[QueueStats]:
        return [await self._stats(queue) for queue in QUEUES]

    async def _stats(self, queue: str) -> QueueStats:
        table, due = _TABLES[queue]
        row = await self._pool.fetchrow(
            f"""SELECT
                 (SELECT paused FROM queue_state WHERE queue = $1) AS paused,
                 count(*) FILTER (WHERE status = 'pending' AND {due} <= now()
                                  AND (claimed_until IS NULL OR claimed_until < now())) AS waiting,
                 count(*) FILTER (WHERE status = 'pending' AND claimed_until >= now()) AS active,
                 count(*) FILTER (WHERE status = 'pending' AND {due} > now()
                                  AND (claimed_until IS NULL OR claimed_until < now())) AS delayed,
                 count(*) FILTER (WHERE status = 'succeeded') AS completed,
                 count(*) FILTER (WHERE status = 'failed') AS failed,
                 count(*) FILTER (WHERE status = 'dead') AS dead,
                 extract(epoch FROM now() - min({due}) FILTER (
                     WHERE status = 'pending' AND {due} <= now()))::float8 AS oldest_waiting_s,
                 count(*) FILTER (WHERE status = 'succeeded'
                                  AND completed_at > now() - interval '1 minute')
                     AS completed_last_minute
               FROM {table}""",
            queue,
        )
        return QueueStats(queue, **dict(row))

    async def set_paused(self, queue: str | None, paused: bool, principal: Principal) -> list[str]:
        names = chosen(queue)
        async with self._pool.acquire() as conn, conn.transaction():
            for name in names:
                await self._webhooks.set_paused(conn, queue=name, paused=paused)
                await _audit(conn, name, "pause" if paused else "resume", {}, principal)
        return list(names)

    async def clear(self, queue: str, state: str, principal: Principal) -> int:
        """Delete finished jobs of `queue` in `state`; jobs waiting or in flight are refused."""
        chosen(queue)
        if state not in CLEARABLE:
            raise InvalidRequest(
                f"only {', '.join(CLEARABLE)} jobs can be cleared, never work in flight",
                param="state",
            )
        async with self._pool.acquire() as conn, conn.transaction():
            table, _ = _TABLES[queue]
            done = await conn.execute(f"DELETE FROM {table} WHERE status = $1", _STATUS_OF[state])
            removed = int(done.split()[-1])
            await _audit(conn, queue, "clear", {"state": state, "removed": removed}, principal)
        return removed


async def _audit(
    conn: asyncpg.Connection, queue: str, action: str, details: dict[str, Any], principal: Principal
) -> None:
    """Queue actions have no row of their own to audit, so they are written here."""
    await conn.execute(
        """INSERT INTO audit_logs (entity_type, entity_id, action, new_values, api_key_id,
                correlation_id)
           VALUES ('queue', $1, 'UPDATE', $2, $3, $4)""",
        uuid5(NAMESPACE_URL, f"paygrid:queue:{queue}"),
        {"queue": queue, "action": action, **details},
        principal.api_key_id,
        principal.correlation_id,
    )
