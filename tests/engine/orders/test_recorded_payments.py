"""A payment settled outside paygrid (cash, a bank transfer), recorded against an order through
the customer's ledger shard: a succeeded purchase with its ledger entry, `payment.succeeded`
event, audit row and idempotency answer, paying its order like any purchase, and never sent to
the gateway (live or in recovery); refused like a purchase that does not fit its order, and
never refunded through a gateway."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from engine.orders.models import NewOrder
from engine.orders.service import OrderService
from engine.orders.states import OrderStatus
from engine.principal import Principal
from tests.engine.orders.making import create_order
from tests.engine.payments import checks
from tests.engine.payments.faults import ledger_refuses
from tests.engine.payments.harness import Rig

WHO = Principal(uuid4(), "recorded-test")
Body = dict[str, Any]


async def customer(rig: Rig) -> UUID:
    result = await rig.one(rig.requests.purchase(100))
    assert result.status_code == 200, result.body
    return UUID(result.body["customer_id"])


async def new_order(
    orders: OrderService, customer_id: UUID, amount: int = 5000, currency: str = "USD"
) -> UUID:
    return (await create_order(orders, NewOrder(customer_id, amount, currency), WHO)).id


async def test_a_cash_payment_pays_the_order_without_the_gateway(
    rig: Rig, orders: OrderService
) -> None:
    r = rig.requests
    who = await customer(rig)
    order_id = await new_order(orders, who)
    calls = len(rig.gateway.calls)

    result = await rig.one(
        r.record(5000, customer_id=who, order_id=order_id, reference="till 4 / receipt 88")
    )

    assert result.status_code == 200, result.body
    body = result.body
    assert (body["type"], body["status"], body["amount_captured"]) == (
        "purchase",
        "succeeded",
        5000,
    )
    assert (body["gateway"], body["gateway_transaction_id"]) == ("external", None)
    assert body["payment_method"] == {"type": "cash", "reference": "till 4 / receipt 88"}
    assert len(rig.gateway.calls) == calls
    await checks.expect_ledger(rig, who, captured=5100)
    assert await checks.event_types(rig.db, body["id"]) == ["payment.succeeded"]
    order, [shown] = await orders.get(order_id)
    assert (order.status, order.amount_paid) == (OrderStatus.PAID, 5000)
    assert shown["payment_method"]["type"] == "cash"
    async with rig.db.connection() as conn:
        audited = await conn.fetchrow(
            """SELECT action, api_key_id FROM audit_logs
               WHERE entity_type = 'transactions' AND entity_id = $1 AND action = 'INSERT'""",
            UUID(body["id"]),
        )
    assert audited is not None
    assert audited["api_key_id"] == r.api_key_id


async def test_transfers_add_up_to_the_amount_and_no_further(
    rig: Rig, orders: OrderService
) -> None:
    r = rig.requests
    who = await customer(rig)
    order_id = await new_order(orders, who)

    first = await rig.one(
        r.record(3000, customer_id=who, order_id=order_id, method="bank_transfer")
    )
    assert first.status_code == 200, first.body
    assert first.body["payment_method"] == {"type": "bank_transfer", "reference": None}
    over = await rig.one(r.record(2001, customer_id=who, order_id=order_id))
    assert (over.status_code, over.body["code"], over.body["param"]) == (
        422,
        "amount_too_large",
        "amount",
    )
    rest = await rig.one(r.record(2000, customer_id=who, order_id=order_id))
    assert rest.status_code == 200, rest.body
    order, _ = await orders.get(order_id)
    assert (order.status, order.amount_paid) == (OrderStatus.PAID, 5000)
    await checks.expect_ledger(rig, who, captured=5100)


async def test_a_recording_that_does_not_fit_its_order_is_refused_by_name(
    rig: Rig, orders: OrderService
) -> None:
    r = rig.requests
    who, other = await customer(rig), await customer(rig)
    mine = await new_order(orders, who)
    euros = await new_order(orders, who, currency="EUR")
    theirs = await new_order(orders, other)
    cancelled = await new_order(orders, who)
    await orders.cancel(cancelled, WHO)

    cases = [
        (r.record(100, customer_id=who, order_id=uuid4()), (404, "resource_missing", "order_id")),
        (r.record(100, customer_id=who, order_id=theirs), (400, "parameter_invalid", "order_id")),
        (r.record(100, customer_id=who, order_id=euros), (400, "parameter_invalid", "currency")),
        (
            r.record(100, customer_id=who, order_id=cancelled),
            (422, "order_not_pending", "order_id"),
        ),
        (
            r.record(100, customer_id=uuid4(), order_id=mine),
            (404, "resource_missing", "customer_id"),
        ),
    ]
    for command, expected in cases:
        result = await rig.one(command)
        assert (result.status_code, result.body["code"], result.body["param"]) == expected
    assert await checks.count_payments(rig.db, who) == 1  # the customer's first purchase only


async def test_a_recording_is_idempotent_like_a_purchase(rig: Rig, orders: OrderService) -> None:
    r = rig.requests
    who = await customer(rig)
    order_id = await new_order(orders, who)

    first = await rig.one(r.record(1500, customer_id=who, order_id=order_id, key="rec-1"))
    again = await rig.one(r.record(1500, customer_id=who, order_id=order_id, key="rec-1"))
    other = await rig.one(r.record(1600, customer_id=who, order_id=order_id, key="rec-1"))

    assert first.status_code == 200, first.body
    assert (again.status_code, again.replayed, again.body["id"]) == (200, True, first.body["id"])
    assert (other.status_code, other.body["type"]) == (422, "idempotency_error")
    assert await checks.count_payments(rig.db, who) == 2
    await checks.expect_ledger(rig, who, captured=1600)


async def test_a_recorded_payment_is_not_refunded_through_a_gateway(
    rig: Rig, orders: OrderService
) -> None:
    r = rig.requests
    who = await customer(rig)
    order_id = await new_order(orders, who)
    paid = (await rig.one(r.record(5000, customer_id=who, order_id=order_id))).body
    calls = len(rig.gateway.calls)

    refused = await rig.one(r.refund(paid, 100))

    assert (refused.status_code, refused.body["code"], refused.body["param"]) == (
        422,
        "payment_recorded_externally",
        "payment_id",
    )
    assert len(rig.gateway.calls) == calls
    await checks.expect_ledger(rig, who, captured=5100)


async def test_recovery_finishes_a_recording_without_asking_the_gateway(
    rig: Rig, orders: OrderService
) -> None:
    r = rig.requests
    who = await customer(rig)
    order_id = await new_order(orders, who)
    command = r.record(5000, customer_id=who, order_id=order_id, key="rec-lost")

    async with ledger_refuses(rig.db, who):
        lost = await rig.one(command)
    assert (lost.status_code, lost.body["code"]) == (503, "finalize_failed")
    assert (await checks.payment_row(rig.db, lost.body["payment_id"]))["status"] == "processing"

    rig.clock.advance(timedelta(minutes=1))
    assert await rig.service.recover(older_than=rig.clock.now()) == 1

    replay = await rig.one(command)
    assert (replay.status_code, replay.replayed, replay.body["status"]) == (200, True, "succeeded")
    assert replay.body["id"] == lost.body["payment_id"]
    assert UUID(lost.body["payment_id"]) not in rig.gateway.lookups
    order, _ = await orders.get(order_id)
    assert order.status is OrderStatus.PAID
    await checks.expect_ledger(rig, who, captured=5100)
