"""What each job kind does. Handlers are idempotent: a job runs at least once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

Handler = Callable[[asyncpg.Pool, dict[str, Any]], Awaitable[None]]


_CHUNK = 5000


async def purge_events(pool: asyncpg.Pool, payload: dict[str, Any]) -> None:
    """Delete events (and their finished deliveries) older than `retention_days` (≥ 30), a
    bounded chunk per statement so no statement outlives its timeout."""
    days = max(30, int(payload.get("retention_days", 90)))
    while True:
        done = await pool.execute(
            """DELETE FROM events WHERE id IN (
                   SELECT e.id FROM events e
                   WHERE e.created_at < now() - make_interval(days => $1)
                     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                                     WHERE d.event_id = e.id AND d.status = 'pending')
                   LIMIT $2)""",
            days,
            _CHUNK,
        )
        if int(done.split()[-1]) < _CHUNK:
            return


async def purge_idempotency_keys(pool: asyncpg.Pool, payload: dict[str, Any]) -> None:
    """Delete idempotency records past their expiry, a bounded chunk per statement."""
    while True:
        done = await pool.execute(
            """DELETE FROM idempotency_keys WHERE (api_key_id, idempotency_key) IN (
                   SELECT api_key_id, idempotency_key FROM idempotency_keys
                   WHERE expires_at < now() LIMIT $1)""",
            _CHUNK,
        )
        if int(done.split()[-1]) < _CHUNK:
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
