"""Builds what one ledger shard runs on: database, Redis, gateway, slot ownership, steps, book
and service."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from engine.config import Settings
from engine.db.database import Database, open_database
from engine.fencing.ownership import SlotOwnership
from engine.gateways.breaker import CircuitBreakers, local_breakers
from engine.gateways.registry import Gateways
from engine.keys.keyring import Keyring
from engine.ledger.book import LedgerBook
from engine.ledger.entries import LedgerRepository
from engine.payments.commands import Command, CommandResult
from engine.payments.metering import ShardMeter
from engine.payments.service import PaymentService
from engine.payments.steps import PaymentSteps
from engine.runtime.gateway import open_gateways
from engine.runtime.metrics import ProcessMetrics, open_process_metrics
from engine.sharding import slots_of
from engine.shared_state import connect_redis
from engine.tracing import TraceOrigins, enabled


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ShardRuntime:
    service: PaymentService
    book: LedgerBook
    db: Database
    redis: Redis
    gateways: Gateways
    breakers: CircuitBreakers
    # How long a gateway timeout may stay `processing` before the sweep settles it.
    settle_after: timedelta
    meter: ShardMeter
    metrics: ProcessMetrics
    # Bank debits: how often to ask the gateway whether a settled one was returned.
    bank_return_check_every: timedelta = timedelta(days=1)

    async def check_bank_returns(self) -> int:
        """Reverse the settled bank debits their banks returned; how many were."""
        return await self.service.check_bank_returns(every=self.bank_return_check_every)

    async def execute(self, commands: Sequence[Command]) -> list[CommandResult]:
        """Run money commands through the service, metered."""
        return await self.meter.run(commands, self.service.execute)

    async def close(self) -> None:
        await self.metrics.close()
        await self.breakers.close()
        await self.gateways.aclose()
        await self.db.close()
        await self.redis.aclose()


async def open_shard_runtime(
    settings: Settings,
    index: int,
    *,
    clock: Callable[[], datetime] = _utcnow,
    breakers: CircuitBreakers | None = None,
) -> ShardRuntime:
    """Shard `index` of `settings.ledger_shards`, its slots claimed: from here on no earlier
    owner of them writes. `breakers` share the gateways' circuits with the cluster; without
    them the shard keeps circuits of its own."""
    db = await open_database(
        settings.database_dsn,
        min_size=1,
        max_size=settings.shard_db_pool(),
        acquire_timeout_s=settings.db_acquire_timeout_s,
    )
    redis = connect_redis(settings.redis_dsn)
    metrics = open_process_metrics(settings, redis, source=f"ledger-shard-{index}")
    metrics.watch_pool(db, "shard")
    meter = ShardMeter(metrics.registry, index)
    metrics.registry.collect(meter.collect)
    gateways = await open_gateways(settings, redis, metrics=metrics.registry)
    breakers = breakers or local_breakers(settings, holder=f"ledger-shard-{index}")
    breakers.start()
    steps = PaymentSteps(
        settings=settings,
        gateways=gateways,
        breakers=breakers,
        shard=index,
        clock=clock,
        keyring=Keyring.from_settings(settings),
    )
    book = LedgerBook(db, LedgerRepository(), idle_evict_s=settings.shard_idle_evict_s)
    ownership = SlotOwnership(
        name=f"ledger-shard-{index}", slots=slots_of(index, settings.ledger_shards)
    )
    service = PaymentService(
        db=db,
        steps=steps,
        book=book,
        ownership=ownership,
        max_batch=settings.shard_max_batch,
        stage_transactions=settings.shard_stage_transactions,
        clock=clock,
        origins=TraceOrigins(redis) if enabled() else None,
    )
    await service.start()
    return ShardRuntime(
        service,
        book,
        db,
        redis,
        gateways,
        breakers,
        timedelta(seconds=settings.shard_settle_after_s),
        meter,
        metrics,
        bank_return_check_every=timedelta(seconds=settings.bank_return_check_interval_s),
    )
