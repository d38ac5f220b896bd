"""What one API replica holds: its pool, Redis client, key service, shard router and webhook
runtime (the dispatcher actors it made sure exist)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from ray.actor import ActorHandle
from redis.asyncio import Redis

from actors.job_scheduler import JobScheduler
from actors.options import job_scheduler_options, webhook_dispatcher_options
from actors.webhook_dispatcher import WebhookDispatcher
from engine.auth.keys import ApiKeyService
from engine.config import Settings
from engine.db.pool import create_pool
from engine.errors import NotFound
from engine.events.repository import EventRepository
from engine.payments.repository import PaymentRepository
from engine.runtime.webhooks import WebhookRuntime, open_webhook_runtime
from serve_app.shards import ShardRouter

_OWNER_CACHE_SIZE = 100_000


@dataclass
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    keys: ApiKeyService
    shards: ShardRouter
    webhooks: WebhookRuntime
    dispatchers: list[ActorHandle]
    schedulers: list[ActorHandle]
    payments: PaymentRepository = field(default_factory=PaymentRepository)
    events: EventRepository = field(default_factory=EventRepository)
    _owners: OrderedDict[UUID, UUID] = field(default_factory=OrderedDict)

    async def owner_of(self, payment_id: UUID) -> UUID:
        """The customer of a payment (never changes, so cached), or NotFound."""
        owner = self._owners.get(payment_id)
        if owner is None:
            async with self.pool.acquire() as conn:
                owner = await self.payments.customer_of(conn, payment_id=payment_id)
            if owner is None:
                raise NotFound(f"no payment {payment_id}", param="payment_id")
            self._owners[payment_id] = owner
            if len(self._owners) > _OWNER_CACHE_SIZE:
                self._owners.popitem(last=False)
        return owner

    async def close(self) -> None:
        await self.webhooks.close()
        await self.pool.close()
        await self.redis.aclose()


async def open_state(settings: Settings) -> AppState:
    pool = await create_pool(
        settings.database_dsn, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    redis = Redis.from_url(settings.redis_dsn)
    keys = ApiKeyService(
        pool, secret=settings.secret_bytes, cache_ttl_s=settings.api_key_cache_ttl_s
    )
    shards = ShardRouter(settings)
    dispatchers = [
        WebhookDispatcher.options(**webhook_dispatcher_options(i)).remote(settings, i)  # type: ignore[attr-defined]
        for i in range(settings.webhook_dispatchers)
    ]
    schedulers = [
        JobScheduler.options(**job_scheduler_options(i)).remote(settings, i)  # type: ignore[attr-defined]
        for i in range(settings.job_schedulers)
    ]
    await asyncio.gather(shards.ready(), *(a.ping.remote() for a in [*dispatchers, *schedulers]))
    webhooks = open_webhook_runtime(settings, pool)
    return AppState(settings, pool, redis, keys, shards, webhooks, dispatchers, schedulers)
