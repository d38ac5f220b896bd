"""Builds and starts what a queue-worker actor runs: its database, the queue's worker, the
LISTEN connection that wakes it, and the loop that pumps it. A webhook dispatcher and a job
scheduler differ only in the worker they pump."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from engine.backups.scheduled import backup_jobs
from engine.config import Settings
from engine.db.database import Database, open_database
from engine.gateways.registry import Gateways
from engine.keys.keyring import Keyring
from engine.payment_methods.service import PaymentMethodService
from engine.payments.expiry_voids import ExpiryVoids
from engine.plans.service import PlanService
from engine.queueing.loop import run_woken
from engine.queueing.settings import scheduler_queue_settings, webhook_queue_settings
from engine.queueing.waker import Waker
from engine.queueing.worker import Worker
from engine.runtime.gateway import open_gateways
from engine.runtime.metrics import ProcessMetrics, open_process_metrics
from engine.runtime.subscriptions import open_subscriptions
from engine.runtime.webhooks import WebhookRuntime, open_webhook_runtime
from engine.scheduler.handlers import HANDLERS, RECURRING, retention_jobs
from engine.scheduler.queue import JOBS
from engine.scheduler.service import Scheduler
from engine.shared_state import connect_redis
from engine.subscriptions.charging import Executor
from engine.tracing import TraceOrigins, enabled
from engine.webhooks.queue import DELIVERIES

# A worker actor's own connections: claims, settles and the handler's reads.
_WORKER_POOL_MAX = 4


# Whatever its items, a worker is pumped, woken and reported on the same way.
AnyWorker = Worker[Any, Any]


@dataclass
class WorkerRuntime:
    """One queue worker, started: pumped whenever woken or every poll interval."""

    db: Database
    worker: AnyWorker
    tasks: tuple[asyncio.Task[None], ...]
    metrics: ProcessMetrics
    redis: Redis
    webhooks: WebhookRuntime | None = None
    gateways: Gateways | None = None

    def activity(self) -> dict[str, int]:
        """What the worker has done, for operators: claims run so far and items in flight."""
        return {"polls": self.worker.polls, "in_flight": self.worker.in_flight}

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.webhooks is not None:
            await self.webhooks.close()
        if self.gateways is not None:
            await self.gateways.aclose()
        await self.metrics.close()
        await self.redis.aclose()
        await self.db.close()


async def _open_db(
    settings: Settings, *, max_size: int = _WORKER_POOL_MAX, synchronous_commit: bool = True
) -> Database:
    return await open_database(
        settings.database_dsn,
        min_size=1,
        max_size=max_size,
        acquire_timeout_s=settings.db_acquire_timeout_s,
        synchronous_commit=synchronous_commit,
    )


def _metrics(
    settings: Settings, db: Database, name: str, *, component: str
) -> tuple[Redis, ProcessMetrics]:
    redis = connect_redis(settings.redis_dsn, max_connections=2)
    metrics = open_process_metrics(settings, redis, source=name)
    metrics.watch_pool(db, component)
    return redis, metrics


def _start(
    settings: Settings, worker: AnyWorker, *, channel: str, poll_s: float, name: str
) -> tuple[asyncio.Task[None], ...]:
    loop = asyncio.get_running_loop()
    waker = Waker(settings.database_dsn, channel, worker.wake, name=name)
    return (
        loop.create_task(waker.run()),
        loop.create_task(run_woken(worker.pump, worker.wake, poll_s=poll_s, name=name)),
    )


async def start_dispatcher(settings: Settings, name: str) -> WorkerRuntime:
    """A webhook dispatcher, sending due deliveries from now on."""
    db = await _open_db(settings)
    redis, metrics = _metrics(settings, db, name, component="dispatcher")
    origins = TraceOrigins(redis) if enabled() else None
    webhooks = open_webhook_runtime(settings, db, metrics=metrics.registry, origins=origins)
    worker = webhooks.dispatcher
    poll_s = webhook_queue_settings(settings).poll_s
    tasks = _start(settings, worker, channel=DELIVERIES.channel, poll_s=poll_s, name=name)
    return WorkerRuntime(db, worker, tasks, metrics, redis, webhooks)


async def start_scheduler(settings: Settings, name: str, *, execute: Executor) -> WorkerRuntime:
    """A job scheduler, running due jobs from now on; recurring jobs are queued if missing.
    Renewals charge through `execute` (the ledger shards); expired authorizations are voided
    at their gateways from here (engine/payments/expiry_voids.py).

    The scheduler's own transactions commit asynchronously (`synchronous_commit = off`): a
    commit returns before its WAL is flushed, so billing's three transactions per renewal stop
    waiting on the disk. Nothing is lost that matters: a scheduler moves no money (charges and
    refunds are the shards', committed synchronously), and PostgreSQL flushes WAL in order, so
    the shard's commit of a charge also makes durable every scheduler commit made before it
    (the invoice, its attempt). Only what follows a charge can be lost with a server crash
    (an attempt's settlement, a job's completion), and both are run again: the attempt is
    still pending, its payment's row says how it came out, and nothing is charged twice. A
    webhook is sent only after its delivery's claim commits synchronously, which flushes the
    event before it."""
    db = await _open_db(settings, max_size=settings.scheduler_db_pool(), synchronous_commit=False)
    redis, metrics = _metrics(settings, db, name, component="scheduler")
    queue = scheduler_queue_settings(settings)
    methods = PaymentMethodService(
        db, Keyring.from_settings(settings), idempotency_ttl_h=settings.idempotency_ttl_h
    )
    billing = open_subscriptions(
        settings,
        db,
        execute=execute,
        methods=methods,
        plans=PlanService(db, max_amount=settings.max_amount),
    )
    backup_handlers, backup_schedule = backup_jobs(settings)
    # The voids of expired authorizations go to the gateways that hold them.
    gateways = await open_gateways(settings, redis, metrics=metrics.registry)
    expiry_voids = ExpiryVoids(gateways)
    scheduler = Scheduler(
        db,
        {
            **HANDLERS,
            **billing.handlers(),
            **backup_handlers,
            **expiry_voids.handlers(),
            **methods.handlers(),
        },
        queue,
        {
            **RECURRING,
            **retention_jobs(settings.audit_retention_days, settings.financial_retention_years),
            **billing.recurring(settings.subscription_sweep_interval_s),
            **backup_schedule,
        },
        metrics=metrics.registry,
    )
    await scheduler.ensure_recurring()
    tasks = _start(settings, scheduler.worker, channel=JOBS.channel, poll_s=queue.poll_s, name=name)
    return WorkerRuntime(db, scheduler.worker, tasks, metrics, redis, gateways=gateways)
