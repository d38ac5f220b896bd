"""Invoices of subscriptions: one by id (a subscription lists its own)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from starlette.responses import Response

from schema.api.common import ERROR_RESPONSES, Envelope
from schema.api.subscriptions import InvoicePublic
from serve_app import responses
from serve_app.deps import CorrelationId, State, SubscriptionsKey

router = APIRouter(prefix="/api/invoices", tags=["subscriptions"], responses=ERROR_RESPONSES)


@router.get(
    "/{invoice_id}", operation_id="retrieve_invoice", response_model=Envelope[InvoicePublic]
)
async def retrieve(
    invoice_id: UUID, key: SubscriptionsKey, state: State, cid: CorrelationId
) -> Response:
    """The invoice with its lines, attempts and the payments that paid it."""
    return responses.ok((await state.subscriptions.invoice(invoice_id)).public(), cid)
