"""An order's status follows its payments, written by the shard in the transaction that moves
them: a purchase pays it, refunds give it back, an authorization holds room without paying it
and its void releases the room, a capture pays what it took. Payments may only name a pending
order, within what it has left; a merchant cancels only while nothing is paid or held."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from engine.errors import InvalidRequest, NotFound, StillInUse
from engine.orders.models import NewOrder, Order
from engine.orders.service import OrderService
from engine.orders.states import OrderStatus
from engine.principal import Principal
from tests.engine.orders.making import create_order
from tests.engine.payments.builders import MAX_AMOUNT
from tests.engine.payments.harness import Rig

WHO = Principal(uuid4(), "orders-test")
Body = dict[str, Any]


async def ok(rig: Rig, command: Any) -> Body:
    result = await rig.one(command)
    assert result.status_code == 200, result.body
    return result.body


async def refused(rig: Rig, command: Any) -> tuple[int, str, str]:
    result = await rig.one(command)
    return result.status_code, result.body["code"], result.body["param"]


async def customer(rig: Rig) -> UUID:
    """A customer, made inline by a small purchase of its own (no order)."""
    return UUID((await ok(rig, rig.requests.purchase(100)))["customer_id"])


async def new_order(orders: OrderService, customer_id: UUID, amount: int = 5000) -> UUID:
    return (await create_order(orders, NewOrder(customer_id, amount, "USD"), WHO)).id


async def state(orders: OrderService, order_id: UUID) -> tuple[OrderStatus, int, int]:
    order, _ = await orders.get(order_id)
    return order.status, order.amount_paid, order.amount_refunded


async def test_a_purchase_pays_the_order_and_refunds_give_it_back(
    rig: Rig, orders: OrderService
) -> None:
    r = rig.requests
    who = await customer(rig)
    order_id = await new_order(orders, who)
    assert await state(orders, order_id) == (OrderStatus.PENDING, 0, 0)

    paid = await ok(rig, r.purchase(5000, customer_id=who, order_id=order_id))
    assert await state(orders, order_id) == (OrderStatus.PAID, 5000, 0)
    await ok(rig, r.refund(paid, 2000))
    assert await state(orders, order_id) == (OrderStatus.PARTIALLY_REFUNDED, 5000, 2000)
    await ok(rig, r.refund(paid, 3000))
    assert await state(orders, order_id) == (OrderStatus.REFUNDED, 5000, 5000)

    order, transactions = await orders.get(order_id)
    [payment] = transactions
    assert payment["id"] == paid["id"]
    assert [x["amount"] for x in payment["refunds"]] == [2000, 3000]
    assert order.public(transactions)["transactions"] == transactions
    with pytest.raises(StillInUse) as caught:
        await orders.cancel(order_id, WHO)
    assert (caught.value.code, caught.value.param) == ("order_paid", "order_id")


async def test_payments_add_up_to_the_amount_and_no_further(rig: Rig, orders: OrderService) -> None:
    r = rig.requests
    who = await customer(rig)
    order_id = await new_order(orders, who)

    await ok(rig, r.purchase(2000, customer_id=who, order_id=order_id))
    assert await state(orders, order_id) == (OrderStatus.PENDING, 2000, 0)
    assert await refused(rig, r.purchase(3001, customer_id=who, order_id=order_id)) == (
        422,
        "amount_too_large",
        "amount",
    )
    # Sent together: each takes its customer's turn, so each sees what the one before it
    # did, and the last finds the order paid.
    first, second, third = await rig.service.execute(
        [
            r.purchase(1000, customer_id=who, order_id=order_id),
            r.purchase(2000, customer_id=who, order_id=order_id),
            r.purchase(1, customer_id=who, order_id=order_id),
        ]
    )
    assert (first.status_code, second.status_code) == (200, 200)
    assert (third.status_code, third.body["code"]) == (422, "order_not_pending")
    assert await state(orders, order_id) == (OrderStatus.PAID, 5000, 0)
    assert await refused(rig, r.purchase(100, customer_id=who, order_id=order_id)) == (
        422,
        "order_not_pending",
        "order_id",
    )


async def test_an_authorization_holds_room_a_void_releases_it_and_cancel_waits_for_it(
    rig: Rig, orders: OrderService
) -> None:
    r = rig.requests
    who = await customer(rig)
    order_id = await new_order(orders, who)

    held = await ok(rig, r.authorize(5000, customer_id=who, order_id=order_id))
    assert await state(orders, order_id) == (OrderStatus.PENDING, 0, 0)
    assert (await refused(rig, r.purchase(1, customer_id=who, order_id=order_id)))[1] == (
        "amount_too_large"
    )
    with pytest.raises(StillInUse) as caught:
        await orders.cancel(order_id, WHO)
    assert caught.value.code == "order_payment_in_flight"

    await ok(rig, r.void(held))
    assert await state(orders, order_id) == (OrderStatus.PENDING, 0, 0)
    cancelled = await orders.cancel(order_id, WHO)
    assert cancelled.status is OrderStatus.CANCELLED
    assert (await orders.cancel(order_id, WHO)).status is OrderStatus.CANCELLED
    assert await refused(rig, r.purchase(100, customer_id=who, order_id=order_id)) == (
        422,
        "order_not_pending",
        "order_id",
    )


async def test_a_capture_pays_what_it_took(rig: Rig, orders: OrderService) -> None:
    r = rig.requests
    who = await customer(rig)
    order_id = await new_order(orders, who)

    held = await ok(rig, r.authorize(5000, customer_id=who, order_id=order_id))
    await ok(rig, r.capture(held, 3000))
    # The uncaptured rest is released: the order has 2000 left to pay.
    assert await state(orders, order_id) == (OrderStatus.PENDING, 3000, 0)
    rest = await ok(rig, r.authorize(2000, customer_id=who, order_id=order_id))
    await ok(rig, r.capture(rest))
    assert await state(orders, order_id) == (OrderStatus.PAID, 5000, 0)


async def test_a_declined_payment_leaves_the_order_as_it_was(
    rig: Rig, orders: OrderService
) -> None:
    r = rig.requests
    who = await customer(rig)
    order_id = await new_order(orders, who)
    rig.gateway.declining_cards["4000000000000002"] = "generic_decline"

    declined = await rig.one(
        r.purchase(5000, customer_id=who, order_id=order_id, number="4000000000000002")
    )
    assert declined.status_code == 402
    assert await state(orders, order_id) == (OrderStatus.PENDING, 0, 0)
    await ok(rig, r.purchase(5000, customer_id=who, order_id=order_id))
    assert await state(orders, order_id) == (OrderStatus.PAID, 5000, 0)


async def test_bad_orders_are_refused_by_name(rig: Rig, orders: OrderService) -> None:
    who = await customer(rig)
    with pytest.raises(NotFound) as missing:
        await create_order(orders, NewOrder(uuid4(), 100, "USD"), WHO)
    assert missing.value.param == "customer_id"
    with pytest.raises(InvalidRequest) as large:
        await create_order(orders, NewOrder(who, MAX_AMOUNT + 1, "USD"), WHO)
    assert large.value.param == "amount"
    for call in (orders.get(uuid4()), orders.cancel(uuid4(), WHO)):
        with pytest.raises(NotFound) as unknown:
            await call
        assert unknown.value.param == "order_id"


async def test_an_order_is_created_pending_and_audited(rig: Rig, orders: OrderService) -> None:
    who = await customer(rig)
    created: Order = await create_order(
        orders, NewOrder(who, 1234, "EUR", "two lamps", {"ref": "A-1"}), WHO
    )
    assert (created.status, created.amount, created.currency) == (OrderStatus.PENDING, 1234, "EUR")
    assert (created.description, created.metadata) == ("two lamps", {"ref": "A-1"})
    async with rig.db.connection() as conn:
        audited = await conn.fetchrow(
            "SELECT action, api_key_id, correlation_id FROM audit_logs WHERE entity_id = $1",
            created.id,
        )
    assert dict(audited) == {
        "action": "INSERT",
        "api_key_id": WHO.api_key_id,
        "correlation_id": WHO.correlation_id,
    }
