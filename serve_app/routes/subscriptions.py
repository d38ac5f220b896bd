"""Subscriptions: create (paying the first invoice at once), retrieve, list, update, cancel,
pause, resume, and a subscription's invoices."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from engine.principal import Principal
from engine.subscriptions.intake import new_subscription, subscription_change
from engine.subscriptions.states import SubscriptionStatus
from engine.test_clocks.service import from_unix
from schema.api.common import ERROR_RESPONSES, GATEWAY_RESPONSES, Envelope, ListEnvelope, PageLimit
from schema.api.subscriptions import (
    InvoicePublic,
    SubscriptionCreate,
    SubscriptionPause,
    SubscriptionPublic,
    SubscriptionUpdate,
)
from serve_app import responses
from serve_app.deps import CorrelationId, State, SubscriptionsContext, SubscriptionsKey

router = APIRouter(
    prefix="/api/subscriptions",
    tags=["subscriptions"],
    responses={**ERROR_RESPONSES, **GATEWAY_RESPONSES},
)

SubscriptionEnvelope = Envelope[SubscriptionPublic]


@router.post(
    "", operation_id="create_subscription", response_model=SubscriptionEnvelope, status_code=201
)
async def create(body: SubscriptionCreate, ctx: SubscriptionsContext, state: State) -> Response:
    """Create a subscription and pay its first invoice now (or start its trial); a decline is
    402 with the `failed` subscription."""
    result = await state.subscriptions.create(new_subscription(body), ctx)
    return responses.from_result(result, ctx.correlation_id)


@router.get("", operation_id="list_subscriptions", response_model=ListEnvelope[SubscriptionPublic])
async def list_subscriptions(
    key: SubscriptionsKey,
    state: State,
    cid: CorrelationId,
    customer_id: UUID | None = None,
    status: SubscriptionStatus | None = None,
    limit: Annotated[PageLimit, Query()] = 10,
    starting_after: UUID | None = None,
) -> Response:
    """Subscriptions, newest first."""
    found, has_more = await state.subscriptions.page(
        customer_id=customer_id, status=status, limit=limit, starting_after=starting_after
    )
    return responses.page(found, has_more, cid)


@router.get(
    "/{subscription_id}", operation_id="retrieve_subscription", response_model=SubscriptionEnvelope
)
async def retrieve(
    subscription_id: UUID, key: SubscriptionsKey, state: State, cid: CorrelationId
) -> Response:
    sub, latest = await state.subscriptions.get(subscription_id)
    return responses.ok(sub.public(latest), cid)


@router.put(
    "/{subscription_id}", operation_id="update_subscription", response_model=SubscriptionEnvelope
)
async def update(
    subscription_id: UUID, body: SubscriptionUpdate, ctx: SubscriptionsContext, state: State
) -> Response:
    """Quantity, price or plan, payment method, cancel at period end, metadata."""
    sub = await state.subscriptions.update(subscription_id, subscription_change(body), ctx)
    return responses.ok(sub.public(), ctx.correlation_id)


@router.delete(
    "/{subscription_id}", operation_id="cancel_subscription", response_model=SubscriptionEnvelope
)
async def cancel(
    subscription_id: UUID,
    key: SubscriptionsKey,
    state: State,
    cid: CorrelationId,
    at_period_end: bool = False,
) -> Response:
    """Cancel now, or at the end of the current period (`?at_period_end=true`)."""
    sub = await state.subscriptions.cancel(
        subscription_id, at_period_end=at_period_end, principal=Principal(key.id, cid)
    )
    return responses.ok(sub.public(), cid)


@router.post(
    "/{subscription_id}/pause",
    operation_id="pause_subscription",
    response_model=SubscriptionEnvelope,
)
async def pause(
    subscription_id: UUID,
    key: SubscriptionsKey,
    state: State,
    cid: CorrelationId,
    body: Annotated[SubscriptionPause | None, Body()] = None,
) -> Response:
    """No charges while paused; `resume_at` (Unix seconds) resumes it by itself."""
    resume_at = None if body is None or body.resume_at is None else from_unix(body.resume_at)
    sub = await state.subscriptions.pause(
        subscription_id, resume_at=resume_at, principal=Principal(key.id, cid)
    )
    return responses.ok(sub.public(), cid)


@router.post(
    "/{subscription_id}/resume",
    operation_id="resume_subscription",
    response_model=SubscriptionEnvelope,
)
async def resume(
    subscription_id: UUID, key: SubscriptionsKey, state: State, cid: CorrelationId
) -> Response:
    """A new period starts now and is paid at once; nothing is billed for the pause."""
    sub = await state.subscriptions.resume(subscription_id, Principal(key.id, cid))
    return responses.ok(sub.public(), cid)


@router.get(
    "/{subscription_id}/invoices",
    operation_id="list_subscription_invoices",
    response_model=ListEnvelope[InvoicePublic],
)
async def invoices(
    subscription_id: UUID,
    key: SubscriptionsKey,
    state: State,
    cid: CorrelationId,
    limit: Annotated[PageLimit, Query()] = 10,
    starting_after: UUID | None = None,
) -> Response:
    """The subscription's invoices, newest first."""
    found, has_more = await state.subscriptions.invoices(
        subscription_id, limit=limit, starting_after=starting_after
    )
    return responses.page([i.public() for i in found], has_more, cid)
