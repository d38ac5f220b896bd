"""Per-route figures over a span of the cluster's per-minute windows: requests, server (5xx)
and client (4xx) errors, and latency quantiles estimated from the duration histogram (within
its bucket, as Prometheus does: exact counts, approximate percentiles)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from engine.metrics.catalogue import HTTP_DURATION, HTTP_REQUESTS
from engine.metrics.reading import quantile, series_values


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass(frozen=True, slots=True)
class RouteStats:
    method: str
    route: str
    count: int
    server_errors: int
    client_errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    def public(self) -> dict[str, object]:
        return {
            "method": self.method,
            "route": self.route,
            "count": self.count,
            "server_errors": self.server_errors,
            "error_rate": _rate(self.server_errors, self.count),
            "client_errors": self.client_errors,
            "client_error_rate": _rate(self.client_errors, self.count),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
        }


def route_stats(span: Mapping[str, float]) -> list[RouteStats]:
    """Each (method, route template) that answered in `span` (counter deltas), busiest
    first."""
    counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for (route, method, status), value in series_values(span, HTTP_REQUESTS.name):
        tally = counts[(method, route)]
        tally[0] += value
        tally[1] += value if status.startswith("5") else 0.0
        tally[2] += value if status.startswith("4") else 0.0
    buckets: dict[tuple[str, str], dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for (route, method, upper), value in series_values(span, f"{HTTP_DURATION.name}_bucket"):
        buckets[(method, route)][float(upper)] += value
    found = []
    for (method, route), (count, server, client) in counts.items():
        if count <= 0:
            continue
        latency = buckets.get((method, route), {})
        found.append(
            RouteStats(
                method,
                route,
                round(count),
                round(server),
                round(client),
                *(_ms(quantile(q, latency)) for q in (0.5, 0.95, 0.99)),
            )
        )
    return sorted(found, key=lambda s: (-s.count, s.route, s.method))
