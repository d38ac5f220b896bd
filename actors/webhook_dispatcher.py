"""WebhookDispatcher: sends due webhook deliveries, woken by PostgreSQL NOTIFY within
milliseconds of the commit that created them, polling as a fallback.

Guarantees after a restart: nothing is lost, because every delivery lives in PostgreSQL; the
ones this incarnation had claimed are retaken (by it or another dispatcher) when their lease
runs out. Delivery is at least once; a receiver dedupes on `webhook-id`. After a database
restart the dispatcher needs no restart of its own: its pool reconnects, and its LISTEN
connection is opened again (polling covers the gap).
"""

from __future__ import annotations

import ray

from actors.queue_worker import QueueWorker
from engine.config import Settings
from engine.logs.setup import configure_logging
from engine.runtime.workers import start_dispatcher
from engine.tracing.setup import configure_tracing


@ray.remote
class WebhookDispatcher(QueueWorker):
    # Ray awaits an async __init__ before the first call (mypy expects a sync one).
    async def __init__(self, settings: Settings, index: int) -> None:  # type: ignore[misc]
        configure_logging(component="dispatcher", process=f"webhook-dispatcher-{index}")
        configure_tracing(settings, component="dispatcher", process=f"webhook-dispatcher-{index}")
        self._index = index
        self._fingerprint = settings.fingerprint()
        self._runtime = await start_dispatcher(settings, f"webhook-dispatcher-{index}")
