"""What each job kind does. Handlers are idempotent: a job runs at least once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

Handler = Callable[[asyncpg.Pool, dict[str, Any]], Awaitable[None]]


async def purge_events(pool: asyncpg.Pool, payload: dict[str, Any]) -> None:
    """Delete events (and their finished deliveries) older than `retention_days` (≥ 30)."""
    days = max(30, int(payload.get("retention_days", 90)))
    await pool.execute(
        """DELETE FROM events e WHERE e.created_at < now() - make_interval(days => $1)
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                             WHERE d.event_id = e.id AND d.status = 'pending')""",
        days,
    )


HANDLERS: dict[str, Handler] = {
    "events.purge": purge_events,
}
