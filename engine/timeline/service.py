"""`GET /api/tracing/requests/{correlation_id}`: what one request did, in time order.

Database rows come from the timeline repository; spans, where a span store exists, from the
`SpanSource` given at construction (none by default: the timeline is then rows only).
"""

from __future__ import annotations

from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound
from engine.logs.context import MAX_CORRELATION_LENGTH, valid_correlation_id
from engine.timeline.models import SpanSource, TimelineEntry
from engine.timeline.repository import TimelineRepository

# Audit rows read for one timeline: a request writes a handful; an operator's bulk change may
# write thousands, and its timeline is then cut (and says so).
AUDIT_LIMIT = 1000


class TimelineService:
    def __init__(self, db: Database, spans: SpanSource | None = None) -> None:
        self._db = db
        self._spans = spans
        self._repository = TimelineRepository()

    async def timeline(self, correlation_id: str) -> tuple[list[TimelineEntry], bool]:
        """Every row (and span) carrying `correlation_id`, oldest first, and whether the list
        was cut; 400 for an id no request could have had, 404 when nothing carries it."""
        if not valid_correlation_id(correlation_id):
            raise InvalidRequest(
                f"a correlation id is 1 to {MAX_CORRELATION_LENGTH} visible ASCII characters",
                code="invalid_correlation_id",
                param="correlation_id",
            )
        async with self._db.connection() as conn:
            entries, truncated = await self._repository.entries(
                conn, correlation_id=correlation_id, audit_limit=AUDIT_LIMIT
            )
        if self._spans is not None:
            entries.extend(await self._spans(correlation_id))
        if not entries:
            raise NotFound(
                f"nothing carries correlation id {correlation_id}", param="correlation_id"
            )
        return sorted(entries, key=TimelineEntry.sort_key), truncated
