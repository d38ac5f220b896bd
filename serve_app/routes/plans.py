"""Plans: create, list, retrieve, archive."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from engine.plans.models import NewPlan, Price
from engine.plans.states import PlanStatus
from engine.principal import Principal
from schema.api.common import ERROR_RESPONSES, Envelope, ListEnvelope, PageLimit
from schema.api.plans import PlanCreate, PlanPublic
from serve_app import responses
from serve_app.deps import CorrelationId, State, SubscriptionsKey

router = APIRouter(prefix="/api/plans", tags=["plans"], responses=ERROR_RESPONSES)

PlanEnvelope = Envelope[PlanPublic]


@router.post("", operation_id="create_plan", response_model=PlanEnvelope, status_code=201)
async def create(
    body: PlanCreate, key: SubscriptionsKey, state: State, cid: CorrelationId
) -> Response:
    """A reusable price; it never changes (archive it and create another)."""
    price = Price(body.amount, body.currency, body.interval, body.interval_count)
    plan = NewPlan(price, body.name, body.trial_period_days, body.metadata)
    created = await state.plans.create(plan, Principal(key.id, cid))
    return responses.ok(created.public(), cid, status_code=201)


@router.get("", operation_id="list_plans", response_model=ListEnvelope[PlanPublic])
async def list_plans(
    key: SubscriptionsKey,
    state: State,
    cid: CorrelationId,
    status: PlanStatus | None = None,
    limit: Annotated[PageLimit, Query()] = 10,
    starting_after: UUID | None = None,
) -> Response:
    """Plans, newest first."""
    found, has_more = await state.plans.page(
        status=status, limit=limit, starting_after=starting_after
    )
    return responses.page([p.public() for p in found], has_more, cid)


@router.get("/{plan_id}", operation_id="retrieve_plan", response_model=PlanEnvelope)
async def retrieve(
    plan_id: UUID, key: SubscriptionsKey, state: State, cid: CorrelationId
) -> Response:
    return responses.ok((await state.plans.get(plan_id)).public(), cid)


@router.post("/{plan_id}/archive", operation_id="archive_plan", response_model=PlanEnvelope)
async def archive(
    plan_id: UUID, key: SubscriptionsKey, state: State, cid: CorrelationId
) -> Response:
    """No new subscriptions on it; existing ones keep billing by it."""
    return responses.ok((await state.plans.archive(plan_id, Principal(key.id, cid))).public(), cid)
