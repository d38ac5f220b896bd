"""The audit trail (admin): who changed which row, how, under which correlation id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from schema.api.common import ERROR_RESPONSES, ListEnvelope
from schema.api.records import AuditLogPublic, AuditLogQuery
from serve_app import responses
from serve_app.deps import AdminKey, CorrelationId, State

router = APIRouter(prefix="/api/audit-logs", tags=["audit"], responses=ERROR_RESPONSES)


@router.get("", operation_id="list_audit_logs", response_model=ListEnvelope[AuditLogPublic])
async def list_audit_logs(
    query: Annotated[AuditLogQuery, Query()], key: AdminKey, state: State, cid: CorrelationId
) -> Response:
    """Audit rows matching every filter given, newest first, `limit` at a time; pass the last
    id as `starting_after` for the next page."""
    found = await state.records.audit_logs(query)
    return responses.page([e.public() for e in found.items], found.has_more, cid)
