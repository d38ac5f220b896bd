"""`/metrics`: the whole cluster's Prometheus metrics, for an admin key or a trusted network."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from engine.metrics.exposition import CONTENT_TYPE
from schema.api.common import ERROR_RESPONSES
from serve_app.deps import MetricsReader, State

router = APIRouter(tags=["metrics"], responses=ERROR_RESPONSES)


@router.get("/metrics", operation_id="metrics", response_class=Response)
async def metrics(reader: MetricsReader, state: State) -> Response:
    """Request, payment, shard, gateway, queue and pool metrics, summed over every process."""
    return Response(await state.metrics_service.exposition(), media_type=CONTENT_TYPE)
