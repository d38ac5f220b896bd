"""Customers: the ledger summary (the seed's synchronous balance inquiry)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from starlette.responses import Response

from schema.api.common import ERROR_RESPONSES, Envelope
from schema.api.payments import LedgerBalancePublic, LedgerPublic
from serve_app import responses
from serve_app.deps import CorrelationId, PaymentsRead, State

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
