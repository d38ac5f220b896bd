"""The event log for merchants: every state change, newest first, with its payload."""

from __future__ import annotations

from uuid import UUID

from engine.db.database import Database
from engine.errors import NotFound
from engine.events.models import LoggedEvent
from engine.events.repository import EventRepository


class EventService:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._repository = EventRepository()

    async def page(
        self,
        *,
        limit: int,
        starting_after: UUID | None = None,
        event_type: str | None = None,
        object_id: UUID | None = None,
    ) -> tuple[list[LoggedEvent], bool]:
        async with self._db.connection() as conn:
            return await self._repository.page(
                conn,
                limit=limit,
                starting_after=starting_after,
                event_type=event_type,
                object_id=object_id,
            )

    async def get(self, event_id: UUID) -> LoggedEvent:
        async with self._db.connection() as conn:
            found, _ = await self._repository.page(conn, limit=1, event_id=event_id)
        if not found:
            raise NotFound(f"no event {event_id}", param="event_id")
        return found[0]
