"""Transactions as the database holds them (the seed's `/api/database/transactions`): one row
with its refunds, or filtered, sorted pages of rows. Read with `payments:read`, the scope that
reads payments: these are the same rows, with their operations. An admin records a payment
settled outside paygrid (cash, a bank transfer) here, and its refunds, through the customer's
ledger shard."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from schema.api.common import ERROR_RESPONSES, Envelope, ListEnvelope
from schema.api.payments import PaymentPublic
from schema.api.records import (
    RecordedPaymentCreate,
    RecordedRefundCreate,
    TransactionQuery,
    TransactionRecordPublic,
)
from serve_app import responses
from serve_app.deps import AdminContext, CorrelationId, PaymentsRead, State

router = APIRouter(
    prefix="/api/database/transactions", tags=["database"], responses=ERROR_RESPONSES
)


@router.post("", operation_id="record_transaction", response_model=Envelope[PaymentPublic])
async def record(body: RecordedPaymentCreate, ctx: AdminContext, state: State) -> Response:
    """Record a payment settled outside paygrid against a pending order of the customer: a
    succeeded purchase with its ledger entry and `payment.succeeded` event; no gateway call.
    `Idempotency-Key` works as for purchases."""
    return responses.from_result(await state.payments.record(body, ctx), ctx.correlation_id)


@router.post(
    "/{transaction_id}/refunds",
    operation_id="record_transaction_refund",
    response_model=Envelope[PaymentPublic],
)
async def record_refund(
    transaction_id: UUID, body: RecordedRefundCreate, ctx: AdminContext, state: State
) -> Response:
    """Record money of a recorded payment (cash, bank transfer) given back outside paygrid: a
    refund with its ledger entry and `payment.refunded` event, the order's status following;
    no gateway call. A card payment is refunded with `POST /api/payments/refund` (422
    `payment_not_recorded` here). `Idempotency-Key` works as for refunds."""
    result = await state.payments.record_refund(transaction_id, body, ctx)
    return responses.from_result(result, ctx.correlation_id)


@router.get(
    "/{transaction_id}",
    operation_id="retrieve_transaction",
    response_model=Envelope[TransactionRecordPublic],
)
async def retrieve(
    transaction_id: UUID, key: PaymentsRead, state: State, cid: CorrelationId
) -> Response:
    """A payment or operation row; a payment comes with its refunds."""
    record, refunds = await state.records.transaction(transaction_id)
    return responses.ok(record.public(refunds), cid)


@router.get(
    "", operation_id="list_transactions", response_model=ListEnvelope[TransactionRecordPublic]
)
async def list_transactions(
    query: Annotated[TransactionQuery, Query()], key: PaymentsRead, state: State, cid: CorrelationId
) -> Response:
    """Rows matching every filter given, in `sort` order (newest first by default), `limit` at
    a time; pass the last id as `starting_after` for the next page."""
    found = await state.records.transactions(query)
    return responses.page([r.public() for r in found.items], found.has_more, cid)
