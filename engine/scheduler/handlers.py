"""What each job kind does. Handlers are idempotent: a job runs at least once. Each deletes in
bounded chunks, one statement per chunk, so no statement outlives its timeout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from engine.db.database import Database
from engine.events.repository import EventRepository
from engine.idempotency.repository import IdempotencyRepository

Handler = Callable[[Database, dict[str, Any]], Awaitable[None]]

_CHUNK = 5000
# Events younger than this are never purged, whatever a job asks.
_MIN_RETENTION_DAYS = 30


async def purge_events(db: Database, payload: dict[str, Any]) -> None:
    """Delete events (and their finished deliveries) older than `retention_days` (≥ 30)."""
    days = max(_MIN_RETENTION_DAYS, int(payload.get("retention_days", 90)))
    events = EventRepository()
    while True:
        async with db.connection() as conn:
            removed = await events.purge(conn, older_than_days=days, limit=_CHUNK)
        if removed < _CHUNK:
            return


async def purge_idempotency_keys(db: Database, payload: dict[str, Any]) -> None:
    """Delete idempotency records past their expiry."""
    records = IdempotencyRepository()
    while True:
        async with db.connection() as conn:
            removed = await records.purge_expired(conn, limit=_CHUNK)
        if removed < _CHUNK:
            return


HANDLERS: dict[str, Handler] = {
    "events.purge": purge_events,
    "idempotency.purge": purge_idempotency_keys,
}

# Jobs that keep themselves scheduled: kind → (payload, every_s).
RECURRING: dict[str, tuple[dict[str, Any], float]] = {
    "events.purge": ({"retention_days": 90}, 24 * 3600.0),
    "idempotency.purge": ({}, 3600.0),
}
