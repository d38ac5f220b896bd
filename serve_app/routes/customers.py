"""Customers: the ledger summary (the seed's synchronous balance inquiry), their saved
payment methods, and the data subject's rights: export and erasure."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from engine.principal import Principal
from schema.api.common import ERROR_RESPONSES, Envelope, ListEnvelope, PageLimit
from schema.api.customers import CustomerExportPublic, CustomerPublic
from schema.api.payment_method_ids import PaymentMethodId
from schema.api.payment_methods import SavedMethodPublic
from schema.api.payments import LedgerBalancePublic, LedgerPublic
from serve_app import responses
from serve_app.deps import CorrelationId, CustomersKey, PaymentsRead, State

router = APIRouter(prefix="/api/customers", tags=["customers"], responses=ERROR_RESPONSES)


@router.get(
    "/{customer_id}/ledger", operation_id="customer_ledger", response_model=Envelope[LedgerPublic]
)
async def ledger(
    customer_id: UUID, key: PaymentsRead, state: State, cid: CorrelationId
) -> Response:
    """Held, captured, refunded and net per currency, answered by the customer's shard."""
    balances = await state.ledgers.summary(customer_id)
    summary = LedgerPublic(
        customer_id=customer_id,
        balances=[
            LedgerBalancePublic(
                currency=c, held=b.held, captured=b.captured, refunded=b.refunded, net=b.net
            )
            for c, b in balances.items()
        ],
    )
    return responses.ok(summary.model_dump(mode="json"), cid)


@router.get(
    "/{customer_id}/payment-methods",
    operation_id="list_customer_payment_methods",
    response_model=ListEnvelope[SavedMethodPublic],
)
async def payment_methods(
    customer_id: UUID,
    key: PaymentsRead,
    state: State,
    cid: CorrelationId,
    limit: Annotated[PageLimit, Query()] = 10,
    starting_after: PaymentMethodId | None = None,
) -> Response:
    """The customer's attached payment methods, newest first."""
    found, has_more = await state.payment_methods.page(
        customer_id, limit=limit, starting_after=starting_after
    )
    return responses.page([m.public() for m in found], has_more, cid)


@router.get(
    "/{customer_id}/export",
    operation_id="export_customer",
    response_model=Envelope[CustomerExportPublic],
)
async def export(
    customer_id: UUID, key: CustomersKey, state: State, cid: CorrelationId
) -> Response:
    """Everything held about the customer as one document (access and portability); audited."""
    document = await state.privacy.export(customer_id, Principal(key.id, cid))
    return responses.ok(document, cid)


@router.delete(
    "/{customer_id}/pii", operation_id="erase_customer", response_model=Envelope[CustomerPublic]
)
async def erase(customer_id: UUID, key: CustomersKey, state: State, cid: CorrelationId) -> Response:
    """Erasure by crypto-shredding: the customer's data keys are destroyed, its financial
    records kept. 409 while it has an active subscription or a payment in flight; erasing
    again answers the same."""
    erased = await state.privacy.erase(customer_id, Principal(key.id, cid))
    return responses.ok(erased.public(), cid)
