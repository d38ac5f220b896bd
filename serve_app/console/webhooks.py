"""Webhooks in the console: endpoints, deliveries by status with their attempts, and replaying
one failed or dead delivery, through the same services as the webhook API."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import RedirectResponse, Response

from engine.queueing.states import REPLAYABLE
from engine.webhooks.states import DeliveryStatus
from serve_app.console.forms import DeliveryFilters, next_page
from serve_app.console.pages import ConsoleRoute, page
from serve_app.console.session import WebhooksOperator
from serve_app.deps import State

router = APIRouter(route_class=ConsoleRoute)

PAGE_SIZE = 25
ENDPOINTS_SHOWN = 100
NOTICES = {
    "replayed": "The delivery is queued again.",
    "not_replayed": "Nothing to replay: the delivery is pending or delivered, or its endpoint is "
    "not enabled.",
}


@router.get("/webhooks")
async def webhooks(
    session: WebhooksOperator,
    state: State,
    filters: Annotated[DeliveryFilters, Query()],
    notice: str | None = None,
) -> Response:
    endpoints, _ = await state.webhooks.endpoints.page(limit=ENDPOINTS_SHOWN, starting_after=None)
    deliveries, more = await state.webhooks.deliveries.page(
        limit=PAGE_SIZE, starting_after=filters.starting_after, status=filters.status
    )
    last = deliveries[-1].id if deliveries else None
    return page(
        session,
        "webhooks.html",
        endpoints=endpoints,
        deliveries=deliveries,
        filters=filters,
        statuses=list(DeliveryStatus),
        replayable=REPLAYABLE,
        next_page=next_page(filters, more, last),
        notice=NOTICES.get(notice or ""),
    )


@router.post("/webhooks/deliveries/{delivery_id}/replay")
async def replay(delivery_id: UUID, session: WebhooksOperator, state: State) -> Response:
    requeued = await state.webhooks.deliveries.retry(delivery_id)
    done = "replayed" if requeued else "not_replayed"
    return RedirectResponse(f"/console/webhooks?notice={done}", status_code=303)
