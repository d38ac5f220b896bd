"""SQL of every lease queue: claim, lease one item, settle, replay, pause, stats, clear, and the
audit rows of operators' queue actions. Never commits.

One `QueueRepository` per `QueueSpec`; its statements are built once from the spec's names
(module constants, never input) so asyncpg prepares each once per connection. Statuses are
written as the literal `'pending'` where a partial index (`WHERE status = 'pending'`) must
match the query; a parameter would hide it from the planner.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg

from engine.principal import Principal
from engine.queueing.models import QueueStats
from engine.queueing.policy import Settlement
from engine.queueing.spec import QueueSpec
from engine.queueing.states import REPLAYABLE, JobStatus


@dataclass(frozen=True, slots=True)
class Lease:
    """An item taken by one worker until its lease runs out; `attempts` counts this one."""

    id: UUID
    attempts: int
    group_id: UUID | None


def _lease(r: asyncpg.Record) -> Lease:
    return Lease(r["id"], r["attempts"], r["group_id"])


def _count(status: str) -> int:
    """The row count of an UPDATE or DELETE command status ("UPDATE 3")."""
    return int(status.split()[-1])


class QueueRepository:
    def __init__(self, spec: QueueSpec) -> None:
        self.spec = spec
        table, due, groups = spec.table, spec.due, spec.groups
        group_id = f"item.{groups.column}" if groups else "NULL::uuid"
        take = f"""UPDATE {table} item
            SET claimed_until = now() + make_interval(secs => $2), attempts = item.attempts + 1
            FROM due WHERE item.id = due.id
            RETURNING item.id, item.attempts, {group_id} AS group_id"""
        if groups is None:
            self._claim = f"""WITH due AS (
                    SELECT id FROM {table}
                    WHERE status = 'pending' AND {due} <= now()
                      AND (claimed_until IS NULL OR claimed_until < now())
                      AND NOT (SELECT paused FROM queue_state WHERE queue = $3)
                    ORDER BY {due} LIMIT $1
                    FOR UPDATE SKIP LOCKED)
                {take}"""
        else:
            # Each eligible group offers at most its room: `per_group` ($6) less what the
            # worker already has in flight to it ($4, $5).
            self._claim = f"""WITH busy AS (
                    SELECT * FROM unnest($4::uuid[], $5::int[]) AS b(group_id, in_flight)),
                due AS (
                    SELECT i.id FROM {groups.table} g
                    LEFT JOIN busy b ON b.group_id = g.id
                    CROSS JOIN LATERAL (
                        SELECT i.id FROM {table} i
                        WHERE i.{groups.column} = g.id AND i.status = 'pending'
                          AND i.{due} <= now()
                          AND (i.claimed_until IS NULL OR i.claimed_until < now())
                        ORDER BY i.{due}
                        LIMIT greatest(0, $6 - coalesce(b.in_flight, 0))
                        FOR UPDATE SKIP LOCKED) i
                    WHERE g.status = $7
                      AND NOT (SELECT paused FROM queue_state WHERE queue = $3)
                    LIMIT $1)
                {take}"""
        self._lease_one = f"""UPDATE {table} item
            SET claimed_until = now() + make_interval(secs => $2), attempts = item.attempts + 1
            WHERE item.id = $1 AND item.status = 'pending'
              AND (item.claimed_until IS NULL OR item.claimed_until < now())
            RETURNING item.id, item.attempts, {group_id} AS group_id"""
        # Only the lease being settled: an item claimed again since (its lease ran out) has
        # more attempts, and its new holder settles it.
        self._settle = f"""UPDATE {table} item SET
                status = s.status, last_error = s.error, claimed_until = NULL,
                {due} = CASE WHEN s.retry_in_s IS NULL THEN item.{due}
                             ELSE now() + make_interval(secs => s.retry_in_s) END,
                completed_at = CASE WHEN s.status = 'pending' THEN NULL ELSE now() END
            FROM unnest($1::uuid[], $2::int[], $3::text[], $4::float8[], $5::text[])
                 AS s(id, attempts, status, retry_in_s, error)
            WHERE item.id = s.id AND item.attempts = s.attempts AND item.status = 'pending'"""
        in_group = ""
        if groups is not None:
            in_group = f"""AND ($5::uuid IS NULL OR {groups.column} = $5)
                AND {groups.column} IN (SELECT id FROM {groups.table} WHERE status = $6)"""
        self._requeue = f"""UPDATE {table} SET status = 'pending', attempts = 0,
                {due} = now(), claimed_until = NULL, completed_at = NULL
            WHERE status = ANY($1::text[]) AND ($2::uuid IS NULL OR id = $2)
              AND ($3::timestamptz IS NULL OR created_at >= $3)
              AND ($4::timestamptz IS NULL OR created_at < $4)
              {in_group}"""
        self._exists = f"SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1)"
        self._stats = f"""SELECT
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
            FROM {table}"""
        self._clear = f"DELETE FROM {table} WHERE status = $1"
        # Counting stops at the limit, so a huge backlog costs no more than a threshold's worth.
        self._backlog = f"""SELECT count(*) FROM (
                SELECT 1 FROM {table}
                WHERE status = 'pending' AND {due} <= now()
                  AND (claimed_until IS NULL OR claimed_until < now())
                LIMIT $1) AS due"""

    async def claim(
        self,
        conn: asyncpg.Connection,
        *,
        limit: int,
        lease_s: float,
        per_group: int | None = None,
        in_flight: Mapping[UUID, int] | None = None,
    ) -> list[Lease]:
        """Lease up to `limit` due items for `lease_s`, oldest due first; none while the queue
        is paused. Rows another worker is claiming are skipped, never waited for, so two
        workers never take the same item. In a grouped queue, only items of eligible groups,
        and at most `per_group` less `in_flight[group]` of each. A worker that dies leaves its
        leases to run out; then any worker takes the items again."""
        if self.spec.groups is None:
            rows = await conn.fetch(self._claim, limit, lease_s, self.spec.name)
        else:
            busy = dict(in_flight or {})
            rows = await conn.fetch(
                self._claim,
                limit,
                lease_s,
                self.spec.name,
                list(busy),
                list(busy.values()),
                limit if per_group is None else per_group,
                self.spec.groups.eligible,
            )
        return [_lease(r) for r in rows]

    async def lease(self, conn: asyncpg.Connection, *, item_id: UUID, lease_s: float) -> Lease:
        """Lease one named pending item, paused or not (the caller has just created it in this
        transaction, so no worker can see it yet)."""
        row = await conn.fetchrow(self._lease_one, item_id, lease_s)
        if row is None:
            raise LookupError(f"{self.spec.name} item {item_id} is not pending and free")
        return _lease(row)

    async def settle(self, conn: asyncpg.Connection, *, settlements: Sequence[Settlement]) -> None:
        """Close attempts (succeeded, failed, dead) or put their items back to wait, in one
        statement however many there are."""
        if not settlements:
            return
        await conn.execute(
            self._settle,
            [s.item_id for s in settlements],
            [s.attempts for s in settlements],
            [s.status for s in settlements],
            [s.retry_in_s for s in settlements],
            [s.error for s in settlements],
        )

    async def requeue(
        self,
        conn: asyncpg.Connection,
        *,
        statuses: Collection[JobStatus],
        item_id: UUID | None = None,
        group_id: UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Replay finished items in `statuses` (failed or dead): back to `pending`, due now,
        with a fresh round of attempts; in a grouped queue only items of eligible groups
        (nothing would take the others). Wakes the workers when the transaction commits."""
        if not set(statuses) <= REPLAYABLE:
            raise ValueError(f"only {sorted(REPLAYABLE)} items can be replayed")
        args: list[Any] = [list(statuses), item_id, since, until]
        if self.spec.groups is not None:
            args += [group_id, self.spec.groups.eligible]
        elif group_id is not None:
            raise ValueError(f"the {self.spec.name} queue has no groups")
        count = _count(await conn.execute(self._requeue, *args))
        if count:
            await conn.execute("SELECT pg_notify($1, '')", self.spec.channel)
        return count

    async def exists(self, conn: asyncpg.Connection, *, item_id: UUID) -> bool:
        return bool(await conn.fetchval(self._exists, item_id))

    async def set_paused(self, conn: asyncpg.Connection, *, paused: bool) -> None:
        """Pause or resume the queue for every worker, across restarts. Resuming wakes the
        workers when the transaction commits, so waiting items go out at once."""
        await conn.execute(
            """WITH changed AS (
                   UPDATE queue_state SET paused = $2, updated_at = now()
                   WHERE queue = $1 RETURNING paused)
               SELECT pg_notify($3, '') FROM changed WHERE NOT paused""",
            self.spec.name,
            paused,
            self.spec.channel,
        )

    async def paused(self, conn: asyncpg.Connection) -> bool:
        return bool(
            await conn.fetchval("SELECT paused FROM queue_state WHERE queue = $1", self.spec.name)
        )

    async def stats(self, conn: asyncpg.Connection) -> QueueStats:
        row = await conn.fetchrow(self._stats, self.spec.name)
        return QueueStats(self.spec.name, **dict(row))

    async def backlog(self, conn: asyncpg.Connection, *, limit: int) -> int:
        """Due items waiting to be claimed, counted up to `limit`."""
        return int(await conn.fetchval(self._backlog, limit))

    async def clear(self, conn: asyncpg.Connection, *, status: JobStatus) -> int:
        """Delete the finished items in `status`; never pending ones (waiting or in flight)."""
        if status is JobStatus.PENDING:
            raise ValueError("pending items are work to do, never cleared")
        return _count(await conn.execute(self._clear, status))

    async def record_action(
        self,
        conn: asyncpg.Connection,
        *,
        action: str,
        details: Mapping[str, Any],
        principal: Principal,
    ) -> None:
        """Audit an operator's action on the queue (pause, resume, clear). A queue has no row
        of its own for the audit trigger to see, so the entry is written here, under a stable
        id per queue."""
        await conn.execute(
            """INSERT INTO audit_logs (entity_type, entity_id, action, new_values, api_key_id,
                    correlation_id)
               VALUES ('queue', $1, 'UPDATE', $2, $3, $4)""",
            uuid5(NAMESPACE_URL, f"paygrid:queue:{self.spec.name}"),
            {"queue": str(self.spec.name), "action": action, **details},
            principal.api_key_id,
            principal.correlation_id,
        )
