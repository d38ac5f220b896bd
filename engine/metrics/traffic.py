"""The last hour's HTTP traffic, minute by minute, for the console's overview.

Each minute's counter window (`MetricsStore`, kept a little over an hour) is folded on read into
its HTTP totals (requests, server errors, and the request-duration histogram summed over routes
and methods), which give the minute's request rate and latency quantiles estimated from the
histogram's buckets (the bucket's upper bound, as Prometheus's
`histogram_quantile` would place it at worst). Loss-tolerant like every other series: losing
Redis loses the chart's past, nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from engine.metrics.catalogue import HTTP_DURATION, HTTP_REQUESTS, LATENCY_BUCKETS
from engine.metrics.recorder import SEP, bound

MINUTES = 60

_REQUESTS = HTTP_REQUESTS.name + SEP
_BUCKET = f"{HTTP_DURATION.name}_bucket{SEP}"
_SUM = f"{HTTP_DURATION.name}_sum{SEP}"
_COUNT = f"{HTTP_DURATION.name}_count{SEP}"
_BOUNDS = tuple(bound(b) for b in (*LATENCY_BUCKETS, math.inf))


def fold(counters: Mapping[str, float]) -> dict[str, float]:
    """HTTP counter deltas summed over routes and methods: `requests`, `errors`
    (5xx), `duration_sum`, `duration_count` and `le:<bound>` per bucket (cumulative)."""
    folded: dict[str, float] = {}

    def add(field: str, delta: float) -> None:
        folded[field] = folded.get(field, 0.0) + delta

    for key, delta in counters.items():
        if key.startswith(_REQUESTS):
            add("requests", delta)
            if key.rsplit(SEP, 1)[-1].startswith("5"):
                add("errors", delta)
        elif key.startswith(_BUCKET):
            add("le:" + key.rsplit(SEP, 1)[-1], delta)
        elif key.startswith(_SUM):
            add("duration_sum", delta)
        elif key.startswith(_COUNT):
            add("duration_count", delta)
    return folded


@dataclass(frozen=True, slots=True)
class TrafficMinute:
    """One minute: its start (Unix seconds), requests per second, the share of 5xx answers,
    and latency (seconds; None without requests)."""

    start_s: int
    rate_per_s: float
    error_ratio: float
    mean_s: float | None
    p50_s: float | None
    p95_s: float | None


def _quantile(buckets: list[tuple[float, float]], total: float, q: float) -> float | None:
    """The upper bound of the first bucket holding quantile `q` (the largest finite bound
    when only +Inf does)."""
    if total <= 0:
        return None
    rank = q * total
    for upper, cumulative in buckets:
        if cumulative >= rank:
            return upper if math.isfinite(upper) else LATENCY_BUCKETS[-1]
    return LATENCY_BUCKETS[-1]


def minute(start_s: int, folded: Mapping[str, float], *, seconds: float = 60.0) -> TrafficMinute:
    """The minute starting at `start_s` from its folded hash (empty: no traffic), its rate
    over the `seconds` of it that have passed (all 60 but for the current minute)."""
    count = folded.get("duration_count", 0.0)
    buckets = [(float(b), folded.get("le:" + b, 0.0)) for b in _BOUNDS]
    requests = folded.get("requests", 0.0)
    return TrafficMinute(
        start_s=start_s,
        rate_per_s=requests / seconds,
        error_ratio=folded.get("errors", 0.0) / requests if requests else 0.0,
        mean_s=folded.get("duration_sum", 0.0) / count if count else None,
        p50_s=_quantile(buckets, count, 0.5),
        p95_s=_quantile(buckets, count, 0.95),
    )
