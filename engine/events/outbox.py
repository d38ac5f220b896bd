"""Writes events in the caller's transaction, so an event exists exactly when its change does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    object_type: str
    object_id: UUID
    payload: dict[str, Any]
    api_key_id: UUID | None
    correlation_id: str | None
    # Set only for events meant for one webhook endpoint (webhook.test).
    target_endpoint_id: UUID | None = None


class Outbox:
    async def add(self, conn: asyncpg.Connection, *, events: list[Event]) -> None:
        """Write events in one statement, whatever their number."""
        if not events:
            return
        await conn.execute(
            """INSERT INTO events (event_type, object_type, object_id, payload, api_key_id,
                    correlation_id, target_endpoint_id)
               SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::jsonb[], $5::uuid[],
                                    $6::text[], $7::uuid[])""",
            [e.type for e in events],
            [e.object_type for e in events],
            [e.object_id for e in events],
            [e.payload for e in events],
            [e.api_key_id for e in events],
            [e.correlation_id for e in events],
            [e.target_endpoint_id for e in events],
        )
