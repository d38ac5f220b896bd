"""Run due jobs: claim under a lease, call the kind's handler, settle. A failed job is retried
with the queue's backoff and dead-lettered after the last attempt; an unknown kind fails at once.
A recurring job queues its next run in the transaction that records its success.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from engine.scheduler.handlers import Handler
from engine.scheduler.repository import Job, JobRepository
from engine.webhooks.policy import RetryPolicy

log = logging.getLogger("paygrid.scheduler")


def recurring_key(kind: str) -> str:
    return f"recurring:{kind}"


class Scheduler:
    def __init__(
        self,
        pool: asyncpg.Pool,
        handlers: Mapping[str, Handler],
        policy: RetryPolicy,
        recurring: Mapping[str, tuple[dict[str, Any], float]] | None = None,
        *,
        batch: int = 20,
        lease_s: float = 300.0,
    ) -> None:
        self._pool = pool
        self._handlers = handlers
        self._recurring = dict(recurring or {})
        self._policy = policy
        self._batch = batch
        self._lease_s = lease_s
        self._repository = JobRepository()

    async def ensure_recurring(self) -> None:
        """Make sure every recurring job has its next run queued (one, whatever the number of
        schedulers: the dedupe key holds it)."""
        async with self._pool.acquire() as conn:
            for kind, (payload, every_s) in self._recurring.items():
                await self._repository.enqueue(
                    conn,
                    kind=kind,
                    payload=payload,
                    dedupe_key=recurring_key(kind),
                    run_at=datetime.now(UTC) + timedelta(seconds=every_s),
                )

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
        async with self._pool.acquire() as conn, conn.transaction():
            if error is None:
                await self._repository.settle(conn, job_id=job.id, status="succeeded")
                if job.kind in self._recurring:
                    payload, every_s = self._recurring[job.kind]
                    await self._repository.enqueue(
                        conn,
                        kind=job.kind,
                        payload=payload,
                        dedupe_key=recurring_key(job.kind),
                        run_at=datetime.now(UTC) + timedelta(seconds=every_s),
                    )
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
