"""What one API replica holds: its database, Redis client and key service, the shard router,
the engine services its routes call (the vault with its keyring among them), and handles of the
queue workers it made sure exist."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import ray
from redis.asyncio import Redis

from actors import fleet
from actors.fleet import Handle
from actors.gateway_circuits import shared_breakers
from engine.auth.keys import ApiKeyService
from engine.auth.sessions import SessionService
from engine.compliance.service import AlertService
from engine.config import Settings
from engine.customers.service import CustomerService
from engine.database_admin.service import DatabaseAdmin
from engine.db.database import Database, open_database
from engine.gateways.breaker import CircuitBreakers
from engine.gateways.directory import GatewayDirectory
from engine.health.checks import database_check, redis_check
from engine.health.service import HealthService
from engine.health.signals import cluster_signals
from engine.health.thresholds import Thresholds
from engine.inflight.registry import InFlightRegistry, heartbeat_ttl_s
from engine.inflight.tracker import InFlight
from engine.jobs.reports import ReportService
from engine.keys.keyring import Keyring
from engine.ledger.reads import LedgerReads
from engine.metrics.service import MetricsService
from engine.orders.service import OrderService
from engine.payment_methods.service import PaymentMethodService
from engine.payments.reads import PaymentReads
from engine.payments.requests import PaymentRequests
from engine.plans.service import PlanService
from engine.privacy.service import PrivacyService
from engine.records.service import RecordsService
from engine.runtime.access import Access, open_access
from engine.runtime.gateway import open_gateways
from engine.runtime.metrics import ProcessMetrics, metrics_store, open_process_metrics
from engine.runtime.subscriptions import open_subscriptions
from engine.runtime.webhooks import WebhookRuntime, open_webhook_runtime
from engine.shared_state import connect_redis
from engine.subscriptions.service import SubscriptionService
from engine.test_clocks.service import TestClockService
from engine.timeline.service import TimelineService
from engine.timeline.spans import StoredSpans
from serve_app.client_ip import ClientAddress
from serve_app.health_checks import replica_checks
from serve_app.report_jobs import RayReportJobs
from serve_app.request_metrics import describe
from serve_app.shards import ShardRouter


@dataclass
class AppState:
    settings: Settings
    db: Database
    redis: Redis
    keys: ApiKeyService
    access: Access
    clients: ClientAddress
    console_sessions: SessionService
    shards: ShardRouter
    payments: PaymentRequests
    payment_reads: PaymentReads
    payment_methods: PaymentMethodService
    customers: CustomerService
    orders: OrderService
    privacy: PrivacyService
    test_clocks: TestClockService
    plans: PlanService
    subscriptions: SubscriptionService
    ledgers: LedgerReads
    records: RecordsService
    alerts: AlertService
    health: HealthService
    database_admin: DatabaseAdmin
    reports: ReportService
    webhooks: WebhookRuntime
    dispatchers: list[Handle]
    schedulers: list[Handle]
    metrics: ProcessMetrics
    metrics_service: MetricsService
    gateways: GatewayDirectory
    breakers: CircuitBreakers
    inflight: InFlight
    inflight_registry: InFlightRegistry
    timeline: TimelineService

    async def close(self) -> None:
        await self.inflight.close()
        await self.metrics.close()
        await self.breakers.close()
        await self.gateways.aclose()
        await self.webhooks.close()
        await self.access.close()
        await self.db.close()
        await self.redis.aclose()


async def open_state(settings: Settings, deployment: str, *, process: str) -> AppState:
    """Everything a replica of `deployment` serves with, its metrics published as `process`;
    waits until the actors it routes to are up."""
    db = await open_database(
        settings.database_dsn,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        acquire_timeout_s=settings.db_acquire_timeout_s,
    )
    redis = connect_redis(settings.redis_dsn)
    metrics = open_process_metrics(settings, redis, source=process)
    metrics.watch_pool(db, "api")
    access = await open_access(settings, db, redis)
    shards = ShardRouter(
        fleet.ledger_shards(settings),
        max_batch=settings.shard_max_batch,
        calls_in_flight=settings.shard_calls_in_flight,
    )
    dispatchers = fleet.webhook_dispatchers(settings)
    schedulers = fleet.job_schedulers(settings)
    await asyncio.gather(shards.ready(), *(a.ping.remote() for a in [*dispatchers, *schedulers]))
    reads = PaymentReads(db)
    keyring = Keyring.from_settings(settings)
    gateways = await open_gateways(settings, redis, metrics=metrics.registry)
    # A replica sends no payments: it watches the circuits and is never granted a probe.
    breakers = shared_breakers(settings, None)
    breakers.start()
    methods = PaymentMethodService(
        db, keyring, idempotency_ttl_h=settings.idempotency_ttl_h, gateway=gateways.primary
    )
    plans = PlanService(db, max_amount=settings.max_amount)
    subscriptions = open_subscriptions(
        settings, db, execute=shards.execute, methods=methods, plans=plans
    )
    webhooks = open_webhook_runtime(settings, db)
    store = metrics_store(settings, redis)
    limits = Thresholds()
    registry = InFlightRegistry(redis, ttl_s=heartbeat_ttl_s(settings.inflight_flush_s))
    inflight = InFlight(
        registry,
        replica=process,
        node=ray.get_runtime_context().get_node_id(),
        describe=describe,
        interval_s=settings.inflight_flush_s,
    )
    inflight.start()
    return AppState(
        settings=settings,
        db=db,
        redis=redis,
        keys=access.keys,
        access=access,
        clients=ClientAddress(settings.trusted_proxies),
        console_sessions=SessionService(redis, access.guard, idle_s=settings.console_idle_s),
        shards=shards,
        payments=PaymentRequests(
            execute=shards.execute,
            reads=reads,
            max_amount=settings.max_amount,
            open_saved=methods.charge_source,
        ),
        payment_reads=reads,
        payment_methods=methods,
        customers=CustomerService(db, keyring),
        orders=OrderService(
            db, max_amount=settings.max_amount, idempotency_ttl_h=settings.idempotency_ttl_h
        ),
        privacy=PrivacyService(db, keyring),
        test_clocks=subscriptions.clocks,
        plans=plans,
        subscriptions=subscriptions.service,
        ledgers=LedgerReads(db, shards.balances),
        records=RecordsService(db),
        alerts=AlertService(db),
        health=HealthService(
            [
                database_check(db),
                redis_check(redis),
                *replica_checks(
                    deployment,
                    shards=shards.handles,
                    dispatchers=dispatchers,
                    schedulers=schedulers,
                    timeout_s=settings.health_timeout_s,
                ),
            ],
            timeout_s=settings.health_timeout_s,
            cache_s=settings.health_cache_s,
            signals=partial(
                cluster_signals, store, webhooks.queues, depth_limit=limits.queue_depth
            ),
            thresholds=limits,
        ),
        database_admin=DatabaseAdmin(db),
        reports=ReportService(
            RayReportJobs(settings.jobs_api_url, data_dir=settings.data_dir),
            reports_dir=Path(settings.reports_path),
        ),
        webhooks=webhooks,
        dispatchers=dispatchers,
        schedulers=schedulers,
        metrics=metrics,
        metrics_service=MetricsService(store, webhooks.queues),
        gateways=GatewayDirectory(gateways, breakers),
        breakers=breakers,
        inflight=inflight,
        inflight_registry=registry,
        # Spans join the timeline where this cluster keeps them (the in-memory store).
        timeline=TimelineService(db, StoredSpans(redis) if settings.tracing == "memory" else None),
    )
