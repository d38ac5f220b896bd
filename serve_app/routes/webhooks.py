"""Webhook endpoints, test sends, deliveries (with every attempt) and replays."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from engine.principal import Principal
from engine.webhooks.models import Delivery, Endpoint
from engine.webhooks.states import DeliveryStatus
from schema.api.common import ERROR_RESPONSES, Envelope, ListEnvelope, PageLimit
from schema.api.webhooks import (
    AttemptPublic,
    BulkRetryCreate,
    DeliveryPublic,
    EndpointCreate,
    EndpointPublic,
    EndpointUpdate,
    EventTypeFilter,
)
from serve_app import responses
from serve_app.deps import CorrelationId, State, WebhooksKey

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


def _public(endpoint: Endpoint, *, with_secret: bool = False) -> dict[str, object]:
    return EndpointPublic(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        enabled_events=endpoint.enabled_events,
        status=endpoint.status,
        disabled_reason=endpoint.disabled_reason,
        metadata=endpoint.metadata,
        secret=endpoint.shown_secret if with_secret else None,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    ).model_dump(mode="json")


def _delivery(delivery: Delivery) -> dict[str, object]:
    return DeliveryPublic(
        id=delivery.id,
        event_id=delivery.event_id,
        endpoint_id=delivery.endpoint_id,
        event_type=delivery.event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        completed_at=delivery.completed_at,
        attempt_log=[
            AttemptPublic(
                attempted_at=a.attempted_at,
                http_status=a.http_status,
                latency_ms=a.latency_ms,
                response_excerpt=a.response_excerpt,
                error=a.error,
            )
            for a in delivery.attempt_log
        ],
    ).model_dump(mode="json")


@router.post(
    "/endpoints", operation_id="create_webhook_endpoint", response_model=Envelope[EndpointPublic]
)
async def create_endpoint(
    body: EndpointCreate, key: WebhooksKey, state: State, cid: CorrelationId
) -> Response:
    """Register an endpoint; the answer holds its signing secret, shown this once."""
    endpoint = await state.webhooks.endpoints.create(
        url=body.url,
        enabled_events=body.enabled_events,
        description=body.description,
        metadata=body.metadata,
        principal=Principal(key.id, cid),
    )
    return responses.ok(_public(endpoint, with_secret=True), cid)


@router.get(
    "/endpoints", operation_id="list_webhook_endpoints", response_model=ListEnvelope[EndpointPublic]
)
async def list_endpoints(
    key: WebhooksKey,
    state: State,
    cid: CorrelationId,
    limit: Annotated[PageLimit, Query()] = 10,
    starting_after: UUID | None = None,
) -> Response:
    found, more = await state.webhooks.endpoints.page(limit=limit, starting_after=starting_after)
    return responses.page([_public(e) for e in found], more, cid)


@router.get(
    "/endpoints/{endpoint_id}",
    operation_id="retrieve_webhook_endpoint",
    response_model=Envelope[EndpointPublic],
)
async def get_endpoint(
    endpoint_id: UUID, key: WebhooksKey, state: State, cid: CorrelationId
) -> Response:
    return responses.ok(_public(await state.webhooks.endpoints.get(endpoint_id)), cid)


@router.put(
    "/endpoints/{endpoint_id}",
    operation_id="update_webhook_endpoint",
    response_model=Envelope[EndpointPublic],
)
async def update_endpoint(
    endpoint_id: UUID, body: EndpointUpdate, key: WebhooksKey, state: State, cid: CorrelationId
) -> Response:
    """Change the URL, events, description, metadata, or enable/disable the endpoint."""
    changes = body.model_dump(exclude_unset=True)
    endpoint = await state.webhooks.endpoints.update(endpoint_id, changes, Principal(key.id, cid))
    return responses.ok(_public(endpoint), cid)


@router.delete(
    "/endpoints/{endpoint_id}",
    operation_id="delete_webhook_endpoint",
    response_model=Envelope[EndpointPublic],
)
async def delete_endpoint(
    endpoint_id: UUID, key: WebhooksKey, state: State, cid: CorrelationId
) -> Response:
    """Stop deliveries to the endpoint; its delivery history stays."""
    endpoint = await state.webhooks.endpoints.delete(endpoint_id, Principal(key.id, cid))
    return responses.ok(_public(endpoint), cid)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    operation_id="rotate_webhook_secret",
    response_model=Envelope[EndpointPublic],
)
async def rotate_secret(
    endpoint_id: UUID, key: WebhooksKey, state: State, cid: CorrelationId
) -> Response:
    """A new signing secret; the old one keeps signing beside it for the grace period."""
    endpoint = await state.webhooks.endpoints.rotate(endpoint_id, Principal(key.id, cid))
    return responses.ok(_public(endpoint, with_secret=True), cid)


@router.post("/test/{endpoint_id}", operation_id="test_webhook_endpoint")
async def test_endpoint(
    endpoint_id: UUID, key: WebhooksKey, state: State, cid: CorrelationId
) -> Response:
    """Send a `webhook.test` event to this endpoint only, and report how the attempt went."""
    delivery_id, attempt = await state.webhooks.endpoints.send_test(
        endpoint_id, Principal(key.id, cid)
    )
    return responses.ok(
        {
            "delivery_id": str(delivery_id),
            "outcome": attempt.verdict.value,
            "http_status": attempt.http_status,
            "latency_ms": attempt.latency_ms,
            "response_excerpt": attempt.response_excerpt,
            "error": attempt.error,
        },
        cid,
    )


@router.get(
    "/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=ListEnvelope[DeliveryPublic],
)
async def list_deliveries(
    key: WebhooksKey,
    state: State,
    cid: CorrelationId,
    limit: Annotated[PageLimit, Query()] = 10,
    starting_after: UUID | None = None,
    endpoint_id: UUID | None = None,
    event_type: Annotated[EventTypeFilter | None, Query()] = None,
    status: DeliveryStatus | None = None,
) -> Response:
    """Deliveries newest first, each with every attempt: time, status, latency, excerpt."""
    found, more = await state.webhooks.deliveries.page(
        limit=limit,
        starting_after=starting_after,
        endpoint_id=endpoint_id,
        event_type=event_type,
        status=status,
    )
    return responses.page([_delivery(d) for d in found], more, cid)


@router.post("/deliveries/retry", operation_id="retry_webhook_deliveries")
async def retry_deliveries(
    body: BulkRetryCreate, key: WebhooksKey, state: State, cid: CorrelationId
) -> Response:
    """Replay every delivery matching the filter (dead ones by default)."""
    count = await state.webhooks.deliveries.retry_many(
        status=body.status, endpoint_id=body.endpoint_id, since=body.since, until=body.until
    )
    return responses.ok({"requeued": count}, cid)


@router.post("/deliveries/{delivery_id}/retry", operation_id="retry_webhook_delivery")
async def retry_delivery(
    delivery_id: UUID, key: WebhooksKey, state: State, cid: CorrelationId
) -> Response:
    """Replay one failed or dead delivery now."""
    count = await state.webhooks.deliveries.retry(delivery_id)
    return responses.ok({"requeued": count}, cid)
