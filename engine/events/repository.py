"""Reading and purging the event log. Never commits."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from engine.events.models import LoggedEvent


class EventRepository:
    async def page(
        self,
        conn: asyncpg.Connection,
        *,
        limit: int,
        starting_after: UUID | None = None,
        event_type: str | None = None,
        object_id: UUID | None = None,
        event_id: UUID | None = None,
    ) -> tuple[list[LoggedEvent], bool]:
        """Events newest first, and whether more follow."""
        rows = await conn.fetch(
            """SELECT id, event_type, created_at, payload, correlation_id
               FROM events
               WHERE ($2::text IS NULL OR event_type = $2)
                 AND ($3::uuid IS NULL OR object_id = $3)
                 AND ($4::uuid IS NULL OR id = $4)
                 AND ($5::uuid IS NULL OR (created_at, id) < (
                       SELECT created_at, id FROM events WHERE id = $5))
               ORDER BY created_at DESC, id DESC LIMIT $1""",
            limit + 1,
            event_type,
            object_id,
            event_id,
            starting_after,
        )
        events = [
            LoggedEvent(
                r["id"], r["event_type"], r["created_at"], r["payload"], r["correlation_id"]
            )
            for r in rows[:limit]
        ]
        return events, len(rows) > limit

    async def purge(self, conn: asyncpg.Connection, *, older_than_days: int, limit: int) -> int:
        """Delete up to `limit` events older than `older_than_days` (their finished deliveries
        go with them); events with a delivery still pending stay. Returns how many went."""
        done = await conn.execute(
            """DELETE FROM events WHERE id IN (
                   SELECT e.id FROM events e
                   WHERE e.created_at < now() - make_interval(days => $1)
                     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                     WHERE d.event_id = e.id AND d.status = 'pending')
                   LIMIT $2)""",
            older_than_days,
            limit,
        )
        return int(done.split()[-1])
