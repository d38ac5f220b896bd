"""The seed's alert thresholds, and which of them the recent signals cross.

The same limits ship as Prometheus alerting rules (`ops/prometheus/alerts.yml`); here they turn
`/health` `degraded` with a warning each, so an operator without Prometheus still sees them.
Rates and latencies need a minimum of requests in the window: one slow request of three is
noise, not an incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.health.report import ThresholdWarning


@dataclass(frozen=True, slots=True)
class Thresholds:
    response_time_ms: float = 200.0
    pool_use: float = 0.8
    queue_depth: int = 1000
    error_rate: float = 0.01
    min_requests: int = 20


@dataclass(frozen=True, slots=True)
class Signals:
    """What the cluster did recently: requests and 5xx answers in the window, its p95 latency,
    database connections in use of the pools' maximum, and each queue's due items waiting."""

    requests: int = 0
    server_errors: int = 0
    p95_ms: float | None = None
    pool_in_use: int = 0
    pool_max: int = 0
    queue_depths: Mapping[str, int] = field(default_factory=dict)


def crossed(signals: Signals, limits: Thresholds) -> list[ThresholdWarning]:
    """A warning for each threshold `signals` cross."""
    warnings: list[ThresholdWarning] = []
    if signals.requests >= limits.min_requests:
        rate = signals.server_errors / signals.requests
        if rate > limits.error_rate:
            warnings.append(
                ThresholdWarning(
                    "error_rate", rate, limits.error_rate, "share of 5xx answers, last minutes"
                )
            )
        if signals.p95_ms is not None and signals.p95_ms > limits.response_time_ms:
            warnings.append(
                ThresholdWarning(
                    "response_time_ms",
                    signals.p95_ms,
                    limits.response_time_ms,
                    "p95 API response time, last minutes",
                )
            )
    if signals.pool_max and signals.pool_in_use / signals.pool_max >= limits.pool_use:
        warnings.append(
            ThresholdWarning(
                "database_pool_use",
                signals.pool_in_use / signals.pool_max,
                limits.pool_use,
                "database connections in use of the pools' maximum",
            )
        )
    for queue, depth in sorted(signals.queue_depths.items()):
        if depth >= limits.queue_depth:
            warnings.append(
                ThresholdWarning(
                    f"queue_depth:{queue}", depth, limits.queue_depth, f"due {queue} items waiting"
                )
            )
    return warnings
