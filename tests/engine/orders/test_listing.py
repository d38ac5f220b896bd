"""Orders a page at a time, newest first: filtered by customer, status and creation time, a
page never repeating or skipping an order, an unknown cursor refused by name."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from engine.errors import InvalidRequest
from engine.orders.models import NewOrder
from engine.orders.service import OrderService
from engine.orders.states import OrderStatus
from engine.principal import Principal
from schema.api.orders import OrderQuery
from tests.engine.orders.making import create_order
from tests.engine.payments.harness import Rig

WHO = Principal(uuid4(), "orders-list-test")


async def customer(rig: Rig) -> UUID:
    return UUID((await rig.one(rig.requests.purchase(100))).body["customer_id"])


async def test_pages_and_filters(rig: Rig, orders: OrderService) -> None:
    mine, theirs = await customer(rig), await customer(rig)
    made = [(await create_order(orders, NewOrder(mine, 100 + i, "USD"), WHO)).id for i in range(5)]
    other = (await create_order(orders, NewOrder(theirs, 100, "USD"), WHO)).id
    await orders.cancel(made[1], WHO)

    seen: list[UUID] = []
    cursor = None
    while True:
        page = await orders.page(OrderQuery(customer_id=mine, limit=2, starting_after=cursor))
        seen += [o.id for o in page.items]
        if not page.has_more:
            break
        cursor = page.items[-1].id
    assert seen == made[::-1]

    cancelled = await orders.page(OrderQuery(customer_id=mine, status=OrderStatus.CANCELLED))
    assert [o.id for o in cancelled.items] == [made[1]]
    everyone = await orders.page(OrderQuery(status=OrderStatus.PENDING, limit=100))
    assert {o.id for o in everyone.items} == {*made, other} - {made[1]}

    newest = (await orders.get(made[4]))[0].created_at
    since = await orders.page(OrderQuery(customer_id=mine, created_gte=newest))
    assert [o.id for o in since.items] == [made[4]]
    before = await orders.page(
        OrderQuery(customer_id=mine, created_lt=newest, created_gte=newest - timedelta(days=1))
    )
    assert [o.id for o in before.items] == made[3::-1]


async def test_an_unknown_cursor_is_refused_by_name(orders: OrderService) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await orders.page(OrderQuery(starting_after=uuid4()))
    assert caught.value.param == "starting_after"
