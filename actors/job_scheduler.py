"""JobScheduler: runs the scheduler queue's due jobs, woken by NOTIFY, polling as a fallback.

Guarantees after a restart: nothing is lost (jobs live in PostgreSQL); jobs this incarnation had
leased run again when their lease ends, so handlers are idempotent. Recurring jobs (housekeeping)
are queued on start if missing, and each run queues the next. After a database restart the
scheduler needs no restart of its own: its pool reconnects, and its LISTEN connection is opened
again (polling covers the gap).
"""

from __future__ import annotations

import asyncio

import ray

from actors.worker_loop import placement
from engine.config import Settings
from engine.db.database import open_database
from engine.queueing.loop import run_woken
from engine.queueing.settings import scheduler_queue_settings
from engine.queueing.waker import Waker
from engine.scheduler.handlers import HANDLERS, RECURRING
from engine.scheduler.queue import JOBS
from engine.scheduler.service import Scheduler


@ray.remote
class JobScheduler:
    # Ray awaits an async __init__ before the first call (mypy expects a sync one).
    async def __init__(self, settings: Settings, index: int) -> None:  # type: ignore[misc]
        self._index = index
        self._fingerprint = settings.fingerprint()
        name = f"job-scheduler-{index}"
        queue = scheduler_queue_settings(settings)
        self._db = await open_database(
            settings.database_dsn,
            min_size=1,
            max_size=4,
            acquire_timeout_s=settings.db_acquire_timeout_s,
        )
        self._scheduler = Scheduler(self._db, HANDLERS, queue, RECURRING)
        await self._scheduler.ensure_recurring()
        self._worker = self._scheduler.worker
        wake = self._worker.wake
        loop = asyncio.get_running_loop()
        self._tasks = (
            loop.create_task(Waker(settings.database_dsn, JOBS.channel, wake, name=name).run()),
            loop.create_task(run_woken(self._worker.pump, wake, poll_s=queue.poll_s, name=name)),
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
