"""Reading the cluster's series back: one metric's label values, and quantiles of a histogram's
cumulative buckets (as Prometheus's `histogram_quantile` estimates them)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from engine.metrics.recorder import SEP


def series_values(series: Mapping[str, float], name: str) -> list[tuple[list[str], float]]:
    """Every series of metric `name` in `series`: its label values and its value."""
    prefix = name + SEP
    return [(k.split(SEP)[1:], v) for k, v in series.items() if k.startswith(prefix)]


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The `q` quantile of cumulative bucket counts by upper bound, interpolated within its
    bucket as Prometheus's `histogram_quantile` does; None without observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for upper in bounds:
        count = buckets[upper]
        if count >= rank:
            if math.isinf(upper):
                return lower
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, count
    return lower
