"""JobScheduler: runs the scheduler queue's due jobs, woken by NOTIFY, polling as a fallback.

Guarantees after a restart: nothing is lost (jobs live in PostgreSQL); jobs this incarnation had
leased run again when their lease ends, so handlers are idempotent. Recurring jobs (housekeeping)
are queued on start if missing, and each run queues the next.
"""

from __future__ import annotations

import asyncio

import asyncpg
import ray

from actors.worker_loop import placement, run_woken
from engine.config import Settings
from engine.db.pool import create_pool
from engine.runtime.webhooks import policy_of
from engine.scheduler.handlers import HANDLERS, RECURRING
from engine.scheduler.service import Scheduler

CHANNEL = "paygrid_scheduled_jobs"


@ray.remote
class JobScheduler:
    async def __init__(self, settings: Settings, index: int) -> None:
        self._index = index
        self._poll_s = settings.webhook_poll_s
        self._pool = await create_pool(settings.database_dsn, min_size=1, max_size=4)
        self._scheduler = Scheduler(self._pool, HANDLERS, policy_of(settings), RECURRING)
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection = await asyncpg.connect(settings.database_dsn)
        await self._listener.add_listener(CHANNEL, lambda *_: self._wake.set())
        await self._scheduler.ensure_recurring()
        self._loop = asyncio.get_running_loop().create_task(
            run_woken(
                self._scheduler.run_once,
                self._wake,
                poll_s=self._poll_s,
                name=f"job-scheduler-{index}",
            )
        )

    async def ping(self) -> int:
        return self._index

    async def where(self) -> dict[str, object]:
        """Where this actor runs, for operators."""
        return placement(self._index)
