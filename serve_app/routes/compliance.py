"""AML alerts (admin): the rule hits the ledger shards wrote, listed and resolved."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from engine.principal import Principal
from schema.api.common import ERROR_RESPONSES, Envelope, ListEnvelope
from schema.api.compliance import AlertPublic, AlertQuery, AlertResolve
from serve_app import responses
from serve_app.deps import AdminKey, CorrelationId, State

router = APIRouter(prefix="/api/compliance/alerts", tags=["compliance"], responses=ERROR_RESPONSES)


@router.get("", operation_id="list_compliance_alerts", response_model=ListEnvelope[AlertPublic])
async def list_alerts(
    query: Annotated[AlertQuery, Query()], key: AdminKey, state: State, cid: CorrelationId
) -> Response:
    """Alerts matching every filter given, newest first, `limit` at a time; pass the last id
    as `starting_after` for the next page."""
    found = await state.alerts.page(query)
    return responses.page([a.public() for a in found.items], found.has_more, cid)


@router.post(
    "/{alert_id}/resolve",
    operation_id="resolve_compliance_alert",
    response_model=Envelope[AlertPublic],
)
async def resolve_alert(
    alert_id: UUID, body: AlertResolve, key: AdminKey, state: State, cid: CorrelationId
) -> Response:
    """Close an open alert with a note (409 if it is already resolved)."""
    alert = await state.alerts.resolve(alert_id, body.note, Principal(key.id, cid))
    return responses.ok(alert.public(), cid)
