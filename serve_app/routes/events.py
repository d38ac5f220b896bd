"""The event log: every state change, with the payload as delivered."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from engine.errors import NotFound
from schema.api.common import ERROR_RESPONSES, Envelope, ListEnvelope, PageLimit
from schema.api.webhooks import EventPublic
from serve_app import responses
from serve_app.deps import CorrelationId, State, WebhooksKey

router = APIRouter(prefix="/api/events", tags=["events"], responses=ERROR_RESPONSES)


@router.get("", operation_id="list_events", response_model=ListEnvelope[EventPublic])
async def list_events(
    key: WebhooksKey,
    state: State,
    cid: CorrelationId,
    limit: Annotated[PageLimit, Query()] = 10,
    starting_after: UUID | None = None,
    event_type: str | None = None,
    object_id: UUID | None = None,
) -> Response:
    async with state.pool.acquire() as conn:
        found, more = await state.events.page(
            conn,
            limit=limit,
            starting_after=starting_after,
            event_type=event_type,
            object_id=object_id,
        )
    return responses.page([EventPublic(**e).model_dump(mode="json") for e in found], more, cid)


@router.get("/{event_id}", operation_id="retrieve_event", response_model=Envelope[EventPublic])
async def get_event(event_id: UUID, key: WebhooksKey, state: State, cid: CorrelationId) -> Response:
    async with state.pool.acquire() as conn:
        found, _ = await state.events.page(conn, limit=1, event_id=event_id)
    if not found:
        raise NotFound(f"no event {event_id}", param="event_id")
    return responses.ok(EventPublic(**found[0]).model_dump(mode="json"), cid)
