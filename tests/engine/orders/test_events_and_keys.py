"""Orders emit their events through the outbox in the transaction that changes them (created,
then one per status they move to), and creating one honours an Idempotency-Key as payments do:
a repeat replays the first order, the key with another request is refused."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from engine.orders.models import NewOrder
from engine.orders.service import OrderService
from engine.principal import Principal
from tests.engine.orders.making import context, create_order
from tests.engine.payments.harness import Rig

WHO = Principal(uuid4(), "order-events-test")
Body = dict[str, Any]


async def ok(rig: Rig, command: Any) -> Body:
    result = await rig.one(command)
    assert result.status_code == 200, result.body
    return result.body


async def order_events(rig: Rig, order_id: UUID) -> list[tuple[str, str]]:
    """(event type, the order's status in its payload) of the order's events, oldest first."""
    async with rig.db.connection() as conn:
        rows = await conn.fetch(
            """SELECT event_type, payload FROM events
               WHERE object_type = 'order' AND object_id = $1 ORDER BY created_at, id""",
            order_id,
        )
    return [(r["event_type"], r["payload"]["status"]) for r in rows]


async def test_each_status_an_order_reaches_is_an_event(rig: Rig, orders: OrderService) -> None:
    r = rig.requests
    who = UUID((await ok(rig, r.purchase(100)))["customer_id"])
    order_id = (await create_order(orders, NewOrder(who, 5000, "USD"), WHO)).id

    part = await ok(rig, r.purchase(2000, customer_id=who, order_id=order_id))
    rest = await ok(rig, r.purchase(3000, customer_id=who, order_id=order_id))
    await ok(rig, r.refund(part, 500))
    await ok(rig, r.refund(part, 1500))  # still partially refunded: no event
    await ok(rig, r.refund(rest))

    assert await order_events(rig, order_id) == [
        ("order.created", "pending"),
        ("order.paid", "paid"),
        ("order.partially_refunded", "partially_refunded"),
        ("order.refunded", "refunded"),
    ]
    other = (await create_order(orders, NewOrder(who, 700, "USD"), WHO)).id
    await orders.cancel(other, WHO)
    await orders.cancel(other, WHO)  # already cancelled: nothing changes, no second event
    assert await order_events(rig, other) == [
        ("order.created", "pending"),
        ("order.cancelled", "cancelled"),
    ]


async def test_an_order_is_created_once_per_idempotency_key(rig: Rig, orders: OrderService) -> None:
    who = UUID((await ok(rig, rig.requests.purchase(100)))["customer_id"])
    new = NewOrder(who, 900, "USD", "a lamp")

    first = await orders.create(new, context(WHO, "order-1", b"body-a"))
    again = await orders.create(new, context(WHO, "order-1", b"body-a"))
    other = await orders.create(NewOrder(who, 901, "USD"), context(WHO, "order-1", b"body-b"))

    assert first.status_code == 201, first.body
    assert (again.status_code, again.replayed, again.body) == (201, True, first.body)
    assert (other.status_code, other.body["type"]) == (422, "idempotency_error")
    async with rig.db.connection() as conn:
        count = await conn.fetchval("SELECT count(*) FROM orders WHERE customer_id = $1", who)
    assert count == 1
    assert await order_events(rig, UUID(first.body["id"])) == [("order.created", "pending")]
