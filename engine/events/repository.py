"""Reading the event log: events as they were delivered, newest first."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg


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
    ) -> tuple[list[dict[str, Any]], bool]:
        rows = await conn.fetch(
            """SELECT id, event_type AS type,
                      extract(epoch FROM created_at)::bigint AS created,
                      jsonb_build_object('object', payload) AS data, correlation_id
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
        return [dict(r) for r in rows[:limit]], len(rows) > limit
