"""Run due jobs on the `scheduler` lease queue: the kind's handler runs, and the job settles
with the queue's policy. A handler that raises is retried with backoff and dead-lettered after
the last attempt; a job of an unknown kind fails at once. A recurring job queues its next run
in the transaction that finishes it (succeeded, failed or dead), so housekeeping never stops,
and the dedupe key keeps that next run to one whatever the number of schedulers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from engine.db.database import Database
from engine.metrics.recorder import NO_METRICS, Metrics
from engine.queueing.policy import Outcome
from engine.queueing.repository import Lease, QueueRepository
from engine.queueing.settings import QueueSettings
from engine.queueing.states import JobStatus
from engine.queueing.worker import Done, Worker
from engine.scheduler.handlers import Handler
from engine.scheduler.queue import JOBS
from engine.scheduler.repository import Job, JobRepository
from engine.tracing import enabled, tracer

log = logging.getLogger("paygrid.scheduler")

_ERROR_CHARS = 500

Recurring = Mapping[str, tuple[dict[str, Any], float]]


def recurring_key(kind: str) -> str:
    return f"recurring:{kind}"


@dataclass(frozen=True, slots=True)
class JobRun:
    """How one run of a job went."""

    outcome: Outcome
    error: str | None


class Jobs:
    """How jobs load, run and settle: the `Handler` of the `scheduler` queue."""

    def __init__(self, db: Database, handlers: Mapping[str, Handler], recurring: Recurring) -> None:
        self._db = db
        self._handlers = handlers
        self._recurring = recurring
        self._repository = JobRepository()

    async def load(self, conn: asyncpg.Connection, leases: Sequence[Lease]) -> Mapping[UUID, Job]:
        return await self._repository.jobs(conn, job_ids=[lease.id for lease in leases])

    async def run(self, item: Job) -> JobRun:
        """Run the job; traced, each run is a trace of its own (its shard calls and SQL in it)."""
        if not enabled():
            return await self._run(item)
        with tracer().start_as_current_span(
            f"job {item.kind}",
            context=Context(),
            kind=SpanKind.CONSUMER,
            attributes={"paygrid.job.id": str(item.id), "paygrid.job.kind": item.kind},
        ) as span:
            run = await self._run(item)
            span.set_attribute("paygrid.job.outcome", run.outcome.value)
            if run.outcome is not Outcome.SUCCEEDED:
                span.set_status(Status(StatusCode.ERROR))
            return run

    async def _run(self, item: Job) -> JobRun:
        handler = self._handlers.get(item.kind)
        if handler is None:
            return JobRun(Outcome.FAILED, f"no handler for job kind '{item.kind}'")
        try:
            await handler(self._db, item.payload)
        except Exception as exc:  # noqa: BLE001 - a job's failure is recorded and retried
            log.warning("job %s (%s) failed: %s", item.id, item.kind, type(exc).__name__)
            return JobRun(Outcome.RETRY, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS])
        return JobRun(Outcome.SUCCEEDED, None)

    async def settled(self, conn: asyncpg.Connection, done: Sequence[Done[Job, JobRun]]) -> None:
        for d in done:
            if d.item.kind in self._recurring and d.settlement.status is not JobStatus.PENDING:
                await self.schedule_next(conn, d.item.kind)

    async def schedule_next(self, conn: asyncpg.Connection, kind: str) -> None:
        payload, every_s = self._recurring[kind]
        await self._repository.enqueue(
            conn,
            kind=kind,
            payload=payload,
            dedupe_key=recurring_key(kind),
            run_at=datetime.now(UTC) + timedelta(seconds=every_s),
        )


class Scheduler:
    def __init__(
        self,
        db: Database,
        handlers: Mapping[str, Handler],
        queue: QueueSettings,
        recurring: Recurring | None = None,
        *,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._db = db
        self._recurring = dict(recurring or {})
        self._jobs = Jobs(db, handlers, self._recurring)
        self.worker: Worker[Job, JobRun] = Worker(
            db,
            QueueRepository(JOBS),
            self._jobs,
            queue.policy,
            max_in_flight=queue.max_in_flight,
            lease_s=queue.lease_s,
            metrics=metrics,
        )

    async def ensure_recurring(self) -> None:
        """Make sure every recurring job has its next run queued (one, whatever the number of
        schedulers: the dedupe key holds it)."""
        async with self._db.transaction() as conn:
            for kind in self._recurring:
                await self._jobs.schedule_next(conn, kind)
