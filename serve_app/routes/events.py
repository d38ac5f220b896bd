"""The event log: every state change, with the payload as delivered."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from engine.events.models import LoggedEvent
from schema.api.common import ERROR_RESPONSES, Envelope, ListEnvelope, PageLimit
from schema.api.webhooks import EventPublic, EventTypeFilter
from serve_app import responses
from serve_app.deps import CorrelationId, State, WebhooksKey

router = APIRouter(prefix="/api/events", tags=["events"], responses=ERROR_RESPONSES)


def _public(event: LoggedEvent) -> dict[str, object]:
    """The event as its webhooks deliver it (the same `created` and `data.object`)."""
    return EventPublic(
        id=event.id,
        type=event.type,
        created=int(event.created_at.timestamp()),
        data={"object": event.payload},
        correlation_id=event.correlation_id,
    ).model_dump(mode="json")


@router.get("", operation_id="list_events", response_model=ListEnvelope[EventPublic])
async def list_events(
    key: WebhooksKey,
    state: State,
    cid: CorrelationId,
    limit: Annotated[PageLimit, Query()] = 10,
    starting_after: UUID | None = None,
    event_type: Annotated[EventTypeFilter | None, Query()] = None,
    object_id: UUID | None = None,
) -> Response:
    found, more = await state.webhooks.events.page(
        limit=limit, starting_after=starting_after, event_type=event_type, object_id=object_id
    )
    return responses.page([_public(e) for e in found], more, cid)


@router.get("/{event_id}", operation_id="retrieve_event", response_model=Envelope[EventPublic])
async def get_event(event_id: UUID, key: WebhooksKey, state: State, cid: CorrelationId) -> Response:
    return responses.ok(_public(await state.webhooks.events.get(event_id)), cid)
