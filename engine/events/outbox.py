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


class Outbox:
    async def add(self, conn: asyncpg.Connection, *, events: list[Event]) -> None:
        await conn.executemany(
            """INSERT INTO events (event_type, object_type, object_id, payload, api_key_id,
                    correlation_id)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            [
                (e.type, e.object_type, e.object_id, e.payload, e.api_key_id, e.correlation_id)
                for e in events
            ],
        )
