"""Orders (the seed's `/api/database/orders`): create, read with their payments, list and
cancel, with the `customers` scope of the customers they belong to. Their status follows their
payments; nothing here sets it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from starlette.responses import Response

from engine.orders.models import NewOrder
from engine.principal import Principal
from schema.api.common import ERROR_RESPONSES, Envelope, ListEnvelope
from schema.api.orders import OrderCreate, OrderPublic, OrderQuery
from serve_app import responses
from serve_app.deps import CorrelationId, CustomersContext, CustomersKey, State

router = APIRouter(prefix="/api/database/orders", tags=["orders"], responses=ERROR_RESPONSES)

OrderEnvelope = Envelope[OrderPublic]


@router.post("", operation_id="create_order", response_model=OrderEnvelope, status_code=201)
async def create(body: OrderCreate, ctx: CustomersContext, state: State) -> Response:
    """A pending order for an existing customer; payments name it with `order_id`.
    `Idempotency-Key` works as for payments."""
    order = NewOrder(body.customer_id, body.amount, body.currency, body.description, body.metadata)
    return responses.from_result(await state.orders.create(order, ctx), ctx.correlation_id)


@router.get("", operation_id="list_orders", response_model=ListEnvelope[OrderPublic])
async def list_orders(
    query: Annotated[OrderQuery, Query()], key: CustomersKey, state: State, cid: CorrelationId
) -> Response:
    """Orders matching every filter given, newest first, `limit` at a time; pass the last id
    as `starting_after` for the next page."""
    found = await state.orders.page(query)
    return responses.page([o.public() for o in found.items], found.has_more, cid)


@router.get("/{order_id}", operation_id="retrieve_order", response_model=OrderEnvelope)
async def retrieve(order_id: UUID, key: CustomersKey, state: State, cid: CorrelationId) -> Response:
    """The order with its payments as `transactions`, each with its refunds."""
    order, transactions = await state.orders.get(order_id)
    return responses.ok(order.public(transactions), cid)


@router.post("/{order_id}/cancel", operation_id="cancel_order", response_model=OrderEnvelope)
async def cancel(order_id: UUID, key: CustomersKey, state: State, cid: CorrelationId) -> Response:
    """Cancel an order nothing has paid and no payment holds or is paying (409 otherwise);
    cancelling it again answers the cancelled order."""
    cancelled = await state.orders.cancel(order_id, Principal(key.id, cid))
    return responses.ok(cancelled.public(), cid)
