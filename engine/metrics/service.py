"""`/metrics`: the cluster's series from Redis, with the queues' depth and lag read from
PostgreSQL at scrape time (the queues live there, so no process needs to publish them); and
`/api/tracing/stats`: the same requests' figures per route over the last minutes."""

from __future__ import annotations

from redis.exceptions import RedisError

from engine.errors import UpstreamError
from engine.metrics.catalogue import QUEUE_DEPTH, QUEUE_LAG
from engine.metrics.exposition import render
from engine.metrics.recorder import series
from engine.metrics.routes import RouteStats, route_stats
from engine.metrics.store import MetricsStore
from engine.metrics.traffic import TrafficMinute
from engine.queueing.service import QueueService


class MetricsService:
    def __init__(self, store: MetricsStore, queues: QueueService) -> None:
        self._store = store
        self._queues = queues

    async def exposition(self) -> str:
        """Every series, in Prometheus's text format."""
        values = {**await self._store.counters(), **await self._store.gauges()}
        for stats in await self._queues.stats():
            values[series(QUEUE_DEPTH.name, (stats.queue,))] = float(stats.waiting)
            values[series(QUEUE_LAG.name, (stats.queue,))] = stats.oldest_waiting_s or 0.0
        return render(values)

    async def last_hour(self) -> list[TrafficMinute]:
        """The HTTP request rate and latency of each of the last 60 complete minutes."""
        return await self._store.traffic()

    async def route_stats(self, minutes: int) -> list[RouteStats]:
        """Per route, what the cluster answered in the last `minutes` (and the current
        minute's part); a 503 when Redis does not answer."""
        try:
            span = await self._store.span(minutes + 1)
        except (RedisError, OSError) as exc:
            raise UpstreamError(
                "request statistics (Redis) are unavailable", code="shared_state_unavailable"
            ) from exc
        return route_stats(span)
