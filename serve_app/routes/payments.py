"""Payments: purchase, authorize, capture, void, refund, retrieve and list."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from engine.payments.states import PaymentStatus
from schema.api.common import ERROR_RESPONSES, GATEWAY_RESPONSES, Envelope, ListEnvelope, PageLimit
from schema.api.payments import (
    CaptureBody,
    CaptureCreate,
    GatewayMethodsPublic,
    PaymentCreate,
    PaymentDetailPublic,
    PaymentPublic,
    RefundBody,
    RefundCreate,
    VoidBody,
    VoidCreate,
)
from serve_app import responses
from serve_app.deps import CorrelationId, MoneyContext, PaymentsRead, State
from serve_app.money_route import MoneyRoute

# The five money commands, served by MoneyRoute (the hot path); everything else, below them in
# the API document as before, by FastAPI's own route class.
money = APIRouter(
    prefix="/api/payments",
    tags=["payments"],
    responses={**ERROR_RESPONSES, **GATEWAY_RESPONSES},
    route_class=MoneyRoute,
)
router = APIRouter(prefix="/api/payments", tags=["payments"], responses=ERROR_RESPONSES)

PaymentEnvelope = Envelope[PaymentPublic]


@money.post("/purchase", operation_id="purchase", response_model=PaymentEnvelope)
async def purchase(body: PaymentCreate, ctx: MoneyContext, state: State) -> Response:
    """Charge a card now."""
    return responses.from_result(await state.payments.purchase(body, ctx), ctx.correlation_id)


@money.post("/authorize", operation_id="authorize", response_model=PaymentEnvelope)
async def authorize(body: PaymentCreate, ctx: MoneyContext, state: State) -> Response:
    """Hold an amount on a card for a later capture."""
    return responses.from_result(await state.payments.authorize(body, ctx), ctx.correlation_id)


@money.post("/capture", operation_id="capture", response_model=PaymentEnvelope)
async def capture(body: CaptureCreate, ctx: MoneyContext, state: State) -> Response:
    """Capture an authorization, fully or partly (once; the rest is released)."""
    return responses.from_result(await state.payments.capture(body, ctx), ctx.correlation_id)


@money.post("/void", operation_id="void", response_model=PaymentEnvelope)
async def void(body: VoidCreate, ctx: MoneyContext, state: State) -> Response:
    """Release an authorization that was not captured."""
    return responses.from_result(await state.payments.void(body, ctx), ctx.correlation_id)


@money.post("/refund", operation_id="refund", response_model=PaymentEnvelope)
async def refund(body: RefundCreate, ctx: MoneyContext, state: State) -> Response:
    """Give back all or part of what was captured; refunds never exceed it."""
    return responses.from_result(await state.payments.refund(body, ctx), ctx.correlation_id)


@router.post(
    "/{payment_id}/capture", operation_id="capture_by_path", response_model=PaymentEnvelope
)
async def capture_by_path(
    payment_id: UUID, body: CaptureBody, ctx: MoneyContext, state: State
) -> Response:
    return await capture(CaptureCreate(payment_id=payment_id, amount=body.amount), ctx, state)


@router.post("/{payment_id}/void", operation_id="void_by_path", response_model=PaymentEnvelope)
async def void_by_path(
    payment_id: UUID, ctx: MoneyContext, state: State, body: VoidBody | None = None
) -> Response:
    return await void(VoidCreate(payment_id=payment_id), ctx, state)


@router.post("/{payment_id}/refund", operation_id="refund_by_path", response_model=PaymentEnvelope)
async def refund_by_path(
    payment_id: UUID, body: RefundBody, ctx: MoneyContext, state: State
) -> Response:
    return await refund(RefundCreate(payment_id=payment_id, **body.model_dump()), ctx, state)


@router.get(
    "/methods",
    operation_id="list_payment_methods",
    response_model=Envelope[list[GatewayMethodsPublic]],
)
async def methods(key: PaymentsRead, state: State, cid: CorrelationId) -> Response:
    """Per configured gateway: what it takes and the state of its circuit."""
    return responses.ok([m.model_dump() for m in state.gateways.methods()], cid)


@router.get(
    "/{payment_id}",
    operation_id="retrieve_payment",
    response_model=Envelope[PaymentDetailPublic],
)
async def retrieve(
    payment_id: UUID, key: PaymentsRead, state: State, cid: CorrelationId
) -> Response:
    """The payment with its refunds and every gateway call made for it."""
    found = await state.payment_reads.get(payment_id)
    return responses.ok(found.public(), cid)


@router.get("", operation_id="list_payments", response_model=ListEnvelope[PaymentPublic])
async def list_payments(
    key: PaymentsRead,
    state: State,
    cid: CorrelationId,
    limit: Annotated[PageLimit, Query()] = 10,
    starting_after: UUID | None = None,
    status: PaymentStatus | None = None,
    customer_id: UUID | None = None,
) -> Response:
    """Newest first, `limit` at a time; pass the last id as `starting_after` for the next page."""
    found = await state.payment_reads.page(
        limit=limit, starting_after=starting_after, status=status, customer_id=customer_id
    )
    return responses.page([p.public() for p in found.payments], found.has_more, cid)
