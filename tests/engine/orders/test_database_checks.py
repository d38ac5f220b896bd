"""The database holds orders to their payments whatever a writer does (migration 0016): the
status must be what the totals say, the totals must stay within the amount, only the allowed
transitions happen, and at commit an order's totals must be its payments' sums, whichever of
the two rows was changed."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from engine.db.database import Database
from engine.orders.models import NewOrder
from engine.orders.service import OrderService
from engine.principal import Principal
from tests.engine.orders.making import create_order
from tests.engine.payments.harness import Rig

WHO = Principal(uuid4(), "orders-db-test")


async def paid_order(rig: Rig, orders: OrderService) -> tuple[UUID, dict[str, Any]]:
    r = rig.requests
    first = await rig.one(r.purchase(100))
    who = UUID(first.body["customer_id"])
    order = await create_order(orders, NewOrder(who, 5000, "USD"), WHO)
    paid = await rig.one(r.purchase(5000, customer_id=who, order_id=order.id))
    assert paid.status_code == 200, paid.body
    return order.id, paid.body


async def refused(db: Database, sql: str, *args: Any) -> str:
    """The name of the constraint that refuses `sql` (checked at once or at commit)."""
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        async with db.transaction() as conn:
            await conn.execute(sql, *args)
    name = caught.value.constraint_name
    assert isinstance(name, str)
    return name


async def test_a_status_must_fit_the_totals(rig: Rig, orders: OrderService) -> None:
    order_id, _ = await paid_order(rig, orders)
    assert (
        await refused(rig.db, "UPDATE orders SET status = 'refunded' WHERE id = $1", order_id)
        == "order_status_fits_totals"
    )
    assert (
        await refused(rig.db, "UPDATE orders SET status = 'cancelled' WHERE id = $1", order_id)
        == "order_status_transition"
    )


async def test_totals_stay_within_the_amount(rig: Rig, orders: OrderService) -> None:
    order_id, _ = await paid_order(rig, orders)
    assert (
        await refused(rig.db, "UPDATE orders SET amount_paid = amount + 1 WHERE id = $1", order_id)
        == "order_paid_within_amount"
    )
    assert (
        await refused(
            rig.db,
            """UPDATE orders SET amount_refunded = amount_paid + 1, status = 'refunded'
               WHERE id = $1""",
            order_id,
        )
        == "order_refunded_within_paid"
    )


async def test_totals_must_be_the_payments_sums_at_commit(rig: Rig, orders: OrderService) -> None:
    order_id, payment = await paid_order(rig, orders)
    # The order alone: consistent with itself, not with its payments.
    assert (
        await refused(
            rig.db,
            """UPDATE orders SET amount_refunded = 1000, status = 'partially_refunded'
               WHERE id = $1""",
            order_id,
        )
        == "order_totals_match_payments"
    )
    # The payment alone: a refund booked on it that its order does not show.
    assert (
        await refused(
            rig.db,
            "UPDATE transactions SET amount_refunded = 1000 WHERE id = $1",
            UUID(payment["id"]),
        )
        == "order_totals_match_payments"
    )
    # Both together, in one transaction, agree: the check is at commit.
    async with rig.db.transaction() as conn:
        await conn.execute(
            "UPDATE transactions SET amount_refunded = 1000 WHERE id = $1", UUID(payment["id"])
        )
        await conn.execute(
            """UPDATE orders SET amount_refunded = 1000, status = 'partially_refunded'
               WHERE id = $1""",
            order_id,
        )


async def test_a_cancelled_order_stays_cancelled(rig: Rig, orders: OrderService) -> None:
    who = UUID((await rig.one(rig.requests.purchase(100))).body["customer_id"])
    order = await create_order(orders, NewOrder(who, 5000, "USD"), WHO)
    await orders.cancel(order.id, WHO)
    assert (
        await refused(rig.db, "UPDATE orders SET status = 'pending' WHERE id = $1", order.id)
        == "order_status_transition"
    )
