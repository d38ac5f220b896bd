"""Compliance alerts in the console (scope `admin`, as in the API): the AML rule hits listed by
rule, status and customer, and resolving an open one with a note, through the same
`AlertService` as `/api/compliance/alerts`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import RedirectResponse, Response

from engine.principal import Principal
from schema.api.compliance import AlertQuery, AlertResolve
from schema.states import AlertStatus, AmlRule
from serve_app.console.forms import AlertFilters, next_page
from serve_app.console.pages import ConsoleRoute, page
from serve_app.console.session import Admin, Form
from serve_app.deps import CorrelationId, State

router = APIRouter(route_class=ConsoleRoute)

PAGE_SIZE = 25
NOTICES = {"resolved": "Alert resolved."}
# Details that are amounts in minor units of the alert's `currency` (compliance/rules.py).
MONEY_FIELDS = frozenset({"amount", "max_amount", "threshold", "total", "floor"})


@router.get("/alerts")
async def alerts(
    session: Admin,
    state: State,
    filters: Annotated[AlertFilters, Query()],
    notice: str | None = None,
) -> Response:
    found = await state.alerts.page(AlertQuery(limit=PAGE_SIZE, **filters.model_dump()))
    last = found.items[-1].id if found.items else None
    return page(
        session,
        "alerts.html",
        alerts=found.items,
        filters=filters,
        rules=list(AmlRule),
        statuses=list(AlertStatus),
        money_fields=MONEY_FIELDS,
        next_page=next_page(filters, found.has_more, last),
        notice=NOTICES.get(notice or ""),
    )


@router.post("/alerts/{alert_id}/resolve")
async def resolve(
    alert_id: UUID, session: Admin, state: State, fields: Form, cid: CorrelationId
) -> Response:
    """Close the alert with the note given (the API's own validation of it); an alert
    already resolved is the API's 409, shown as an error page."""
    note = AlertResolve.model_validate({"note": fields.get("note", "")}).note
    await state.alerts.resolve(alert_id, note, Principal(session.key.id, cid))
    return RedirectResponse("/console/alerts?notice=resolved", status_code=303)
