"""Create, read, list and cancel orders. Their totals and status follow their payments, written
by the ledger shard in the transaction that moves a payment (`engine/payments/creation.py`
checks that a new payment fits its order; `engine/payments/steps.py` brings the order up to
date); this service never writes them. Every change writes its order event (`order.created`,
`order.cancelled`; the shard writes those of payments) in the same transaction.

A cursor (`starting_after`) must name an existing order: an unknown one is a 400 naming it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from engine.customers.repository import CustomerRepository
from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound, StateError, StillInUse
from engine.events.outbox import Outbox
from engine.idempotency.guard import IdempotencyGuard
from engine.orders.events import CREATED, order_event, status_event_type
from engine.orders.models import NewOrder, Order
from engine.orders.repository import OrderRepository
from engine.orders.states import OrderStatus, can_move
from engine.payments.commands import CommandResult, RequestContext
from engine.principal import Principal
from engine.records.models import Page
from engine.records.repository import RecordsRepository
from schema.api.orders import OrderQuery


class OrderService:
    def __init__(self, db: Database, *, max_amount: int, idempotency_ttl_h: int) -> None:
        self._db = db
        self._max_amount = max_amount
        self._idempotency = IdempotencyGuard(ttl_h=idempotency_ttl_h)
        self._outbox = Outbox()
        self._orders = OrderRepository()
        self._customers = CustomerRepository()
        self._records = RecordsRepository()

    async def create(self, order: NewOrder, ctx: RequestContext) -> CommandResult:
        """A new pending order (201, with its `order.created` event); NotFound for an unknown
        customer, 422 for an erased one. A repeat under the same Idempotency-Key replays the
        first answer and creates nothing; the key with another request is 422."""
        if order.amount > self._max_amount:
            raise InvalidRequest(f"amount may be at most {self._max_amount}", param="amount")
        order_id = uuid4()
        async with self._db.transaction() as conn:
            held = await self._idempotency.claim(conn, ctx, resource_id=order_id)
            if held is not None:
                return held
            customer = await self._customers.get(conn, customer_id=order.customer_id, lock=False)
            if customer is None:
                raise NotFound(f"no customer {order.customer_id}", param="customer_id")
            if customer.erased_at is not None:
                raise StateError(
                    f"customer {order.customer_id} is erased",
                    code="customer_erased",
                    param="customer_id",
                )
            principal = ctx.principal
            created = await self._orders.insert(
                conn, order_id=order_id, order=order, principal=principal
            )
            await self._outbox.add(conn, events=[order_event(CREATED, created, principal)])
            return await self._idempotency.answer(conn, ctx, CommandResult(201, created.public()))

    async def get(self, order_id: UUID) -> tuple[Order, list[dict[str, Any]]]:
        """The order with its payments rendered as transactions, each with its refunds; or
        NotFound. One connection, one snapshot: the totals agree with the payments shown."""
        async with (
            self._db.connection() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            order = await self._orders.get(conn, order_id=order_id)
            if order is None:
                raise NotFound(f"no order {order_id}", param="order_id")
            payments = await self._records.order_payments(conn, order_id=order_id)
            refunds = await self._records.order_refunds(conn, order_id=order_id)
        return order, [p.public([r for r in refunds if r.payment_id == p.id]) for p in payments]

    async def page(self, query: OrderQuery) -> Page[Order]:
        """A page of orders matching `query`, newest first."""
        async with self._db.connection() as conn:
            cursor = query.starting_after
            if cursor is not None and not await self._orders.exists(conn, order_id=cursor):
                raise InvalidRequest(f"no order {cursor} to start after", param="starting_after")
            found, more = await self._orders.page(conn, query=query)
        return Page(found, more)

    async def cancel(self, order_id: UUID, principal: Principal) -> Order:
        """Cancel a pending order nothing has paid and no payment is in flight or holds an
        authorization for (409 otherwise); cancelling a cancelled order changes nothing."""
        async with self._db.transaction() as conn:
            # Locked: a payment naming the order locks it too, so it either lands before this
            # check (and is counted) or finds the order cancelled.
            order = await self._orders.get(conn, order_id=order_id, lock=True)
            if order is None:
                raise NotFound(f"no order {order_id}", param="order_id")
            if order.status is OrderStatus.CANCELLED:
                return order
            if not can_move(order.status, OrderStatus.CANCELLED) or order.amount_paid > 0:
                raise StillInUse(
                    f"order {order_id} is {order.status} with {order.amount_paid} paid; only an "
                    "order with nothing paid can be cancelled",
                    code="order_paid",
                    param="order_id",
                )
            if await self._orders.live_payments(conn, order_id=order_id):
                raise StillInUse(
                    f"order {order_id} has a payment in flight or authorized; void it first",
                    code="order_payment_in_flight",
                    param="order_id",
                )
            cancelled = await self._orders.cancel(conn, order_id=order_id, principal=principal)
            assert cancelled is not None, "the locked order was pending with nothing paid"
            event = order_event(status_event_type(cancelled), cancelled, principal)
            await self._outbox.add(conn, events=[event])
            return cancelled
