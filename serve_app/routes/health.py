"""Liveness and dependency health; public."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from serve_app import responses
from serve_app.deps import CorrelationId, State

router = APIRouter(tags=["health"])


@router.get("/health", operation_id="health")
async def health(state: State, cid: CorrelationId) -> Response:
    """`ok` when PostgreSQL and Redis answer; 503 naming what does not."""
    checks = await state.health.check()
    healthy = all(v == "ok" for v in checks.values())
    data = {
        "status": "ok" if healthy else "degraded",
        **checks,
        "ledger_shards": state.shards.count,
        "gateway_circuits": state.gateways.circuits(),
    }
    return responses.ok(data, cid, status_code=200 if healthy else 503)
