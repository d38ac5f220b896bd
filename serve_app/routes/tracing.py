"""Request tracing for operators (scope admin): the cluster's requests in flight, per-route
figures over the last five minutes or hour, and one request's timeline by correlation id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from schema.api.common import ERROR_RESPONSES, Envelope
from schema.api.tracing import (
    CORRELATION_ID_MAX,
    CORRELATION_ID_PATTERN,
    ActiveRequestPublic,
    RouteStatsReport,
    StatsWindow,
    TimelinePublic,
)
from serve_app import responses
from serve_app.deps import AdminKey, CorrelationId, State

router = APIRouter(prefix="/api/tracing", tags=["tracing"], responses=ERROR_RESPONSES)


@router.get(
    "/active",
    operation_id="tracing_active",
    response_model=Envelope[list[ActiveRequestPublic]],
)
async def active(key: AdminKey, state: State, cid: CorrelationId) -> Response:
    """Requests being answered now on every replica of every node, oldest first (published
    by each replica's heartbeat, so at most about a second old)."""
    return responses.ok(await state.inflight_registry.report(), cid)


@router.get("/stats", operation_id="tracing_stats", response_model=Envelope[RouteStatsReport])
async def stats(
    key: AdminKey,
    state: State,
    cid: CorrelationId,
    window: Annotated[StatsWindow, Query()] = StatsWindow.FIVE_MINUTES,
) -> Response:
    """Per method and route template, across replicas: requests, 5xx and 4xx shares, and
    p50/p95/p99 latency (estimated within histogram buckets) over `window`."""
    found = await state.metrics_service.route_stats(window.minutes)
    return responses.ok({"window": window.value, "routes": [s.public() for s in found]}, cid)


@router.get(
    "/requests/{correlation_id}",
    operation_id="tracing_request",
    response_model=Envelope[TimelinePublic],
)
async def timeline(
    correlation_id: Annotated[
        str, Path(min_length=1, max_length=CORRELATION_ID_MAX, pattern=CORRELATION_ID_PATTERN)
    ],
    key: AdminKey,
    state: State,
    cid: CorrelationId,
) -> Response:
    """Every payment, operation, refund, gateway call, AML alert, ledger entry, event, webhook
    delivery and attempt, and audit row the request with this correlation id wrote, oldest
    first."""
    entries, truncated = await state.timeline.timeline(correlation_id)
    data = {
        "correlation_id": correlation_id,
        "entries": [e.public() for e in entries],
        "truncated": truncated,
    }
    return responses.ok(data, cid)
