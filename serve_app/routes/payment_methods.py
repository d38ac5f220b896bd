"""Saved payment methods: save a card or token for a customer, retrieve, detach. A customer's
list lives with the customer (`routes/customers.py`)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from engine.payment_methods.models import NewCard, NewToken
from engine.principal import Principal
from schema.api.common import ERROR_RESPONSES, Envelope
from schema.api.payment_method_ids import PaymentMethodId
from schema.api.payment_methods import CardMethodCreate, PaymentMethodAttach, SavedMethodPublic
from serve_app import responses
from serve_app.deps import CorrelationId, MoneyContext, PaymentsRead, PaymentsWrite, State

router = APIRouter(
    prefix="/api/payment-methods", tags=["payment methods"], responses=ERROR_RESPONSES
)

MethodEnvelope = Envelope[SavedMethodPublic]


@router.post("", operation_id="attach_payment_method", response_model=MethodEnvelope)
async def attach(body: PaymentMethodAttach, ctx: MoneyContext, state: State) -> Response:
    """Save a card (the CVC is checked, never kept) or a sandbox token for a customer; an
    Idempotency-Key makes a retry replay the first answer."""
    method = (
        NewCard(
            body.number.get_secret_value(),
            body.exp_month,
            body.exp_year,
            body.holder_name,
            None if body.cvc is None else body.cvc.get_secret_value(),
        )
        if isinstance(body, CardMethodCreate)
        else NewToken(body.token)
    )
    result = await state.payment_methods.attach(method, customer_id=body.customer_id, ctx=ctx)
    return responses.from_result(result, ctx.correlation_id)


@router.get(
    "/{payment_method_id}", operation_id="retrieve_payment_method", response_model=MethodEnvelope
)
async def retrieve(
    payment_method_id: PaymentMethodId, key: PaymentsRead, state: State, cid: CorrelationId
) -> Response:
    return responses.ok((await state.payment_methods.get(payment_method_id)).public(), cid)


@router.delete(
    "/{payment_method_id}", operation_id="detach_payment_method", response_model=MethodEnvelope
)
async def detach(
    payment_method_id: PaymentMethodId, key: PaymentsWrite, state: State, cid: CorrelationId
) -> Response:
    """Detach for good: the card is forgotten and can no longer be charged."""
    detached = await state.payment_methods.detach(payment_method_id, Principal(key.id, cid))
    return responses.ok(detached.public(), cid)
