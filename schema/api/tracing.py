"""Request tracing for operators (`/api/tracing/*`, scope admin): requests in flight across
the cluster, per-route figures over a window, and one request's timeline by correlation id."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel

# A correlation id: 1 to 128 visible ASCII characters (`engine.logs.context` applies the same
# rule to the X-Correlation-ID header).
CORRELATION_ID_MAX = 128
CORRELATION_ID_PATTERN = r"^[!-~]+$"


class StatsWindow(StrEnum):
    """How far back `/api/tracing/stats` looks."""

    FIVE_MINUTES = "5m"
    ONE_HOUR = "1h"

    @property
    def minutes(self) -> int:
        return 5 if self is StatsWindow.FIVE_MINUTES else 60


class ActiveRequestPublic(BaseModel):
    method: str
    route: str
    started_at: float
    elapsed_ms: float
    correlation_id: str
    replica: str
    node: str


class RouteStatsPublic(BaseModel):
    method: str
    route: str
    count: int
    server_errors: int
    error_rate: float
    client_errors: int
    client_error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class RouteStatsReport(BaseModel):
    window: StatsWindow
    routes: list[RouteStatsPublic]


class TimelineEntryPublic(BaseModel):
    kind: str
    id: str
    at: str
    detail: dict[str, Any]


class TimelinePublic(BaseModel):
    correlation_id: str
    entries: list[TimelineEntryPublic]
    truncated: bool
