"""WebhookDispatcher: sends due webhook deliveries, woken by PostgreSQL NOTIFY within
milliseconds of the commit that created them, polling as a fallback.

Guarantees after a restart: nothing is lost, because every delivery lives in PostgreSQL; the
ones this incarnation had claimed are retaken (by it or another dispatcher) when their lease
runs out. Delivery is at least once; a receiver dedupes on `webhook-id`. After a database
restart the dispatcher needs no restart of its own: its pool reconnects, and its LISTEN
connection is opened again (polling covers the gap).
"""

from __future__ import annotations

import asyncio

import ray

from actors.worker_loop import placement
from engine.config import Settings
from engine.db.database import open_database
from engine.queueing.loop import run_woken
from engine.queueing.settings import webhook_queue_settings
from engine.queueing.waker import Waker
from engine.runtime.webhooks import open_webhook_runtime
from engine.webhooks.queue import DELIVERIES


@ray.remote
class WebhookDispatcher:
    # Ray awaits an async __init__ before the first call (mypy expects a sync one).
    async def __init__(self, settings: Settings, index: int) -> None:  # type: ignore[misc]
        self._index = index
        self._fingerprint = settings.fingerprint()
        name = f"webhook-dispatcher-{index}"
        self._db = await open_database(
            settings.database_dsn,
            min_size=1,
            max_size=4,
            acquire_timeout_s=settings.db_acquire_timeout_s,
        )
        self._runtime = open_webhook_runtime(settings, self._db)
        self._worker = self._runtime.dispatcher
        wake = self._worker.wake
        poll_s = webhook_queue_settings(settings).poll_s
        loop = asyncio.get_running_loop()
        self._tasks = (
            loop.create_task(
                Waker(settings.database_dsn, DELIVERIES.channel, wake, name=name).run()
            ),
            loop.create_task(run_woken(self._worker.pump, wake, poll_s=poll_s, name=name)),
        )

    async def ping(self) -> int:
        return self._index

    async def settings_fingerprint(self) -> str:
        """Which settings this incarnation runs with (see `actors.fleet`)."""
        return self._fingerprint

    async def activity(self) -> dict[str, int]:
        """What this incarnation's worker has done, for operators: claims run so far and
        items in flight."""
        return {"polls": self._worker.polls, "in_flight": self._worker.in_flight}

    async def where(self) -> dict[str, object]:
        """Where this actor runs, for operators."""
        return placement(self._index)
