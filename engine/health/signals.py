"""The signals `/health` compares with its thresholds, gathered across the cluster: the last
minutes' requests, 5xx answers and p95 latency (the metrics' per-minute windows in Redis), the
database pools' use (every process's published gauges), and each queue's backlog (PostgreSQL,
counted no further than the threshold)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from engine.health.thresholds import Signals
from engine.metrics.catalogue import DB_POOL_IN_USE, DB_POOL_MAX, HTTP_DURATION, HTTP_REQUESTS
from engine.metrics.reading import quantile, series_values
from engine.metrics.store import MetricsStore
from engine.queueing.service import QueueService


def http_signals(recent: Mapping[str, float]) -> tuple[int, int, float | None]:
    """Requests, 5xx answers and the p95 latency in ms from a window's counters."""
    requests = errors = 0.0
    for labels, value in series_values(recent, HTTP_REQUESTS.name):
        requests += value
        if labels[-1].startswith("5"):
            errors += value
    buckets: dict[float, float] = defaultdict(float)
    for labels, value in series_values(recent, f"{HTTP_DURATION.name}_bucket"):
        buckets[float(labels[-1])] += value
    p95 = quantile(0.95, buckets)
    return int(requests), int(errors), None if p95 is None else p95 * 1000


async def cluster_signals(
    store: MetricsStore, queues: QueueService, *, depth_limit: int
) -> Signals:
    """What the cluster did recently; queue depths are counted up to `depth_limit`."""
    requests, errors, p95_ms = http_signals(await store.recent())
    gauges = await store.gauges()
    in_use = sum(v for _, v in series_values(gauges, DB_POOL_IN_USE.name))
    pool_max = sum(v for _, v in series_values(gauges, DB_POOL_MAX.name))
    return Signals(
        requests=requests,
        server_errors=errors,
        p95_ms=p95_ms,
        pool_in_use=int(in_use),
        pool_max=int(pool_max),
        queue_depths=await queues.backlog(limit=depth_limit),
    )
