"""A process's metrics: its registry, published to Redis under the process's name, with the
database pools it watches. Each paygrid process (API replica, ledger shard, dispatcher,
scheduler) opens one and names itself; `/metrics` then renders the sum over all of them."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from engine.config import Settings
from engine.db.database import Database
from engine.metrics.catalogue import DB_POOL_IN_USE, DB_POOL_MAX
from engine.metrics.publisher import Publisher
from engine.metrics.recorder import Registry
from engine.metrics.store import MetricsStore

# A process's gauges outlive a few missed publishes, not a dead process.
_GAUGE_TTL_INTERVALS = 3


def metrics_store(settings: Settings, redis: Redis) -> MetricsStore:
    """The cluster's metrics in `redis`."""
    return MetricsStore(redis, gauge_ttl_s=settings.metrics_publish_s * _GAUGE_TTL_INTERVALS)


@dataclass
class ProcessMetrics:
    registry: Registry
    publisher: Publisher

    def watch_pool(self, db: Database, component: str) -> None:
        """Publish `db`'s pool use under `component` (api, shard, dispatcher, scheduler)."""

        def collect(registry: Registry) -> None:
            state = db.pool_state()
            registry.set(DB_POOL_IN_USE, (component,), state.in_use)
            registry.set(DB_POOL_MAX, (component,), state.max_size)

        self.registry.collect(collect)

    async def close(self) -> None:
        await self.publisher.close()


def open_process_metrics(settings: Settings, redis: Redis, *, source: str) -> ProcessMetrics:
    """A registry for this process, published every `metrics_publish_s` as `source` (a name
    unique to the process). Call inside the event loop that records into it."""
    registry = Registry()
    publisher = Publisher(
        registry,
        metrics_store(settings, redis),
        source=source,
        interval_s=settings.metrics_publish_s,
    )
    publisher.start()
    return ProcessMetrics(registry, publisher)
