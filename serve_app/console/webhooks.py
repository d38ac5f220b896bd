"""Webhooks in the console: endpoints, deliveries by status (and endpoint) with their attempts;
replaying one failed or dead delivery or every dead one of an endpoint, rotating an endpoint's
secret (the new one shown once) and sending it a test event, through the same services as the
webhook API."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import RedirectResponse, Response

from engine.principal import Principal
from engine.queueing.states import REPLAYABLE
from engine.webhooks.states import DeliveryStatus
from serve_app.console.forms import DeliveryFilters, next_page
from serve_app.console.pages import ConsoleRoute, page
from serve_app.console.session import WebhooksOperator
from serve_app.deps import CorrelationId, State

router = APIRouter(route_class=ConsoleRoute)

PAGE_SIZE = 25
ENDPOINTS_SHOWN = 100
NOTICES = {
    "replayed": "The delivery is queued again.",
    "not_replayed": "Nothing to replay: the delivery is pending or delivered, or its endpoint is "
    "not enabled.",
}


def _notice(notice: str | None, requeued: int | None) -> str | None:
    if requeued is not None:
        if requeued == 0:
            return "No dead delivery to replay, or the endpoint is not enabled."
        which = "delivery is" if requeued == 1 else "deliveries are"
        return f"{requeued} dead {which} queued again."
    return NOTICES.get(notice or "")


@router.get("/webhooks")
async def webhooks(
    session: WebhooksOperator,
    state: State,
    filters: Annotated[DeliveryFilters, Query()],
    notice: str | None = None,
    requeued: int | None = None,
) -> Response:
    endpoints, _ = await state.webhooks.endpoints.page(limit=ENDPOINTS_SHOWN, starting_after=None)
    deliveries, more = await state.webhooks.deliveries.page(
        limit=PAGE_SIZE,
        starting_after=filters.starting_after,
        status=filters.status,
        endpoint_id=filters.endpoint_id,
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
        notice=_notice(notice, requeued),
    )


@router.post("/webhooks/deliveries/{delivery_id}/replay")
async def replay(delivery_id: UUID, session: WebhooksOperator, state: State) -> Response:
    requeued = await state.webhooks.deliveries.retry(delivery_id)
    done = "replayed" if requeued else "not_replayed"
    return RedirectResponse(f"/console/webhooks?notice={done}", status_code=303)


@router.post("/webhooks/endpoints/{endpoint_id}/replay-dead")
async def replay_dead(endpoint_id: UUID, session: WebhooksOperator, state: State) -> Response:
    """Every dead delivery of the endpoint queued again, as the API's bulk retry does."""
    requeued = await state.webhooks.deliveries.retry_many(
        status=DeliveryStatus.DEAD, endpoint_id=endpoint_id
    )
    return RedirectResponse(
        f"/console/webhooks?endpoint_id={endpoint_id}&requeued={requeued}", status_code=303
    )


@router.post("/webhooks/endpoints/{endpoint_id}/rotate-secret")
async def rotate_secret(
    endpoint_id: UUID, session: WebhooksOperator, state: State, cid: CorrelationId
) -> Response:
    """A new signing secret, shown on this answer only (never stored in clear, never shown
    again); the old one keeps signing beside it until its grace period ends."""
    endpoint = await state.webhooks.endpoints.rotate(endpoint_id, Principal(session.key.id, cid))
    return page(session, "webhook_secret.html", endpoint=endpoint)


@router.post("/webhooks/endpoints/{endpoint_id}/test")
async def send_test(
    endpoint_id: UUID, session: WebhooksOperator, state: State, cid: CorrelationId
) -> Response:
    """A `webhook.test` event sent to this endpoint only, now, with how the attempt went."""
    delivery_id, attempt = await state.webhooks.endpoints.send_test(
        endpoint_id, Principal(session.key.id, cid)
    )
    return page(
        session,
        "webhook_test.html",
        endpoint_id=endpoint_id,
        delivery_id=delivery_id,
        attempt=attempt,
    )
