"""Test clocks (sandbox only): create, advance, retrieve."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from starlette.responses import Response

from engine.principal import Principal
from engine.test_clocks.service import from_unix
from schema.api.common import ERROR_RESPONSES, Envelope
from schema.api.test_clocks import TestClockAdvance, TestClockCreate, TestClockPublic
from serve_app import responses
from serve_app.deps import CorrelationId, State, SubscriptionsKey

router = APIRouter(prefix="/api/test-clocks", tags=["test clocks"], responses=ERROR_RESPONSES)

ClockEnvelope = Envelope[TestClockPublic]


@router.post("", operation_id="create_test_clock", response_model=ClockEnvelope, status_code=201)
async def create(
    body: TestClockCreate, key: SubscriptionsKey, state: State, cid: CorrelationId
) -> Response:
    """A clock frozen at `frozen_time` (Unix seconds); customers created on it live there."""
    clock = await state.test_clocks.create(
        frozen_time=from_unix(body.frozen_time), name=body.name, principal=Principal(key.id, cid)
    )
    return responses.ok(clock.public(), cid, status_code=201)


@router.post(
    "/{test_clock_id}/advance", operation_id="advance_test_clock", response_model=ClockEnvelope
)
async def advance(
    test_clock_id: UUID,
    body: TestClockAdvance,
    key: SubscriptionsKey,
    state: State,
    cid: CorrelationId,
) -> Response:
    """Move the clock forward; it is `advancing` until what became due has run, then `ready`."""
    clock = await state.test_clocks.advance(
        test_clock_id, frozen_time=from_unix(body.frozen_time), principal=Principal(key.id, cid)
    )
    return responses.ok(clock.public(), cid)


@router.get("/{test_clock_id}", operation_id="retrieve_test_clock", response_model=ClockEnvelope)
async def retrieve(
    test_clock_id: UUID, key: SubscriptionsKey, state: State, cid: CorrelationId
) -> Response:
    return responses.ok((await state.test_clocks.get(test_clock_id)).public(), cid)
