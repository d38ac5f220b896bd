"""WebhookDispatcher: sends due webhook deliveries, woken by PostgreSQL NOTIFY within
milliseconds of the commit that created them, polling as a fallback.

Guarantees after a restart: nothing is lost, because every delivery lives in PostgreSQL; the
ones this incarnation had claimed are retaken (by it or another dispatcher) when their lease
runs out. Delivery is at least once; a receiver dedupes on `webhook-id`.
"""

from __future__ import annotations

import asyncio

import asyncpg
import ray

from actors.worker_loop import placement, run_woken
from engine.config import Settings
from engine.db.pool import create_pool
from engine.runtime.webhooks import open_webhook_runtime

CHANNEL = "paygrid_webhook_deliveries"


@ray.remote
class WebhookDispatcher:
    async def __init__(self, settings: Settings, index: int) -> None:
        self._index = index
        self._poll_s = settings.webhook_poll_s
        self._pool = await create_pool(settings.database_dsn, min_size=1, max_size=4)
        self._runtime = open_webhook_runtime(settings, self._pool)
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection = await asyncpg.connect(settings.database_dsn)
        await self._listener.add_listener(CHANNEL, lambda *_: self._wake.set())
        self._runtime.dispatcher.room = self._wake  # a finished delivery also wakes the loop
        self._loop = asyncio.get_running_loop().create_task(
            run_woken(
                self._runtime.dispatcher.pump,
                self._wake,
                poll_s=self._poll_s,
                name=f"webhook-dispatcher-{index}",
            )
        )

    async def ping(self) -> int:
        return self._index

    async def where(self) -> dict[str, object]:
        """Where this actor runs, for operators."""
        return placement(self._index)
