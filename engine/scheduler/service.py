"""Run due jobs: claim under a lease, call the kind's handler, settle. A failed job is retried
with the queue's backoff and dead-lettered after the last attempt; an unknown kind fails at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import asyncpg

from engine.scheduler.handlers import Handler
from engine.scheduler.repository import Job, JobRepository
from engine.webhooks.policy import RetryPolicy

log = logging.getLogger("paygrid.scheduler")


class Scheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        handlers: Mapping[str, Handler],
        policy: RetryPolicy,
        *,
        batch: int = 20,
        lease_s: float = 300.0,
    ) -> None:
        self._pool = pool
        self._handlers = handlers
        self._policy = policy
        self._batch = batch
        self._lease_s = lease_s
        self._repository = JobRepository()

    async def run_once(self) -> int:
        """Run one batch of due jobs to completion; returns how many ran."""
        async with self._pool.acquire() as conn:
            jobs = await self._repository.claim(conn, limit=self._batch, lease_s=self._lease_s)
        await asyncio.gather(*(self._run(job) for job in jobs))
        return len(jobs)

    async def _run(self, job: Job) -> None:
        handler = self._handlers.get(job.kind)
        error: str | None = None
        if handler is None:
            error = f"no handler for job kind '{job.kind}'"
        else:
            try:
                await handler(self._pool, job.payload)
            except Exception as exc:  # a job's failure is recorded and retried, never fatal
                log.warning("job %s (%s) failed: %s", job.id, job.kind, type(exc).__name__)
                error = f"{type(exc).__name__}: {exc}"[:500]
        async with self._pool.acquire() as conn:
            if error is None:
                await self._repository.settle(conn, job_id=job.id, status="succeeded")
            elif handler is None:
                await self._repository.settle(conn, job_id=job.id, status="failed", error=error)
            else:
                delay = self._policy.delay_after(job.attempts)
                await self._repository.settle(
                    conn,
                    job_id=job.id,
                    status="pending" if delay is not None else "dead",
                    retry_in_s=delay,
                    error=error,
                )
