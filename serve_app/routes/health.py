"""Health for operators and orchestrators; public, and naming no host or secret.

`/health`: every component with its latency, and the thresholds crossed; 200 when `ok` or
`degraded`, 503 when `down`. `/health/live`: the process answers (restart it if not).
`/health/ready`: what every request needs answers (send it traffic only then)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from engine.health.report import HealthReport
from schema.states import HealthStatus
from serve_app import responses
from serve_app.deps import CorrelationId, State

router = APIRouter(tags=["health"])


def _answer(
    report: HealthReport, cid: str, *, circuits: Mapping[str, str] | None = None
) -> Response:
    status_code = 503 if report.status is HealthStatus.DOWN else 200
    data = report.public()
    if circuits is not None:
        data["gateway_circuits"] = dict(circuits)
    return responses.ok(data, cid, status_code=status_code)


# Down is answered with the same body as ok and degraded.
_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"description": "`down`: PostgreSQL or every ledger shard is not answering"}
}


@router.get("/health", operation_id="health", responses=_DOWN)
async def health(state: State, cid: CorrelationId) -> Response:
    """`ok | degraded | down`, overall and per component, with latencies and warnings."""
    return _answer(await state.health.report(), cid, circuits=state.gateways.circuits())


@router.get("/health/live", operation_id="health_live")
async def live(cid: CorrelationId) -> Response:
    """The replica's event loop answers; checks nothing else."""
    return responses.ok({"status": str(HealthStatus.OK)}, cid)


@router.get("/health/ready", operation_id="health_ready", responses=_DOWN)
async def ready(state: State, cid: CorrelationId) -> Response:
    """PostgreSQL and the ledger shards answer: 200, else 503."""
    return _answer(await state.health.ready(), cid)
