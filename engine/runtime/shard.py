"""Builds what one ledger shard runs on: pool, Redis, gateway, steps, book and service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from engine.config import Settings
from engine.db.database import open_database
from engine.gateways.sandbox import SandboxGateway
from engine.ledger.book import LedgerBook
from engine.ledger.entries import LedgerRepository
from engine.payments.service import PaymentService
from engine.payments.steps import PaymentSteps


@dataclass(frozen=True, slots=True)
class ShardRuntime:
    service: PaymentService
    book: LedgerBook
    redis: Redis
    # How long a gateway timeout may stay `processing` before the sweep settles it.
    settle_after: timedelta


async def open_shard_runtime(settings: Settings, index: int) -> ShardRuntime:
    db = await open_database(
        settings.database_dsn,
        min_size=1,
        max_size=2,
        acquire_timeout_s=settings.db_acquire_timeout_s,
    )
    redis = Redis.from_url(settings.redis_dsn)
    gateway = SandboxGateway(
        redis,
        latency_ms=settings.sandbox_latency_ms,
        timeout_rate=settings.sandbox_timeout_rate,
    )
    steps = PaymentSteps(
        settings=settings, gateway=gateway, shard=index, clock=lambda: datetime.now(UTC)
    )
    book = LedgerBook(LedgerRepository(), idle_evict_s=settings.shard_idle_evict_s)
    service = PaymentService(db=db, steps=steps, book=book, shard=index)
    return ShardRuntime(service, book, redis, timedelta(seconds=settings.shard_settle_after_s))
