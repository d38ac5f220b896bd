"""Batches through `PaymentService.execute`: one batch mixing customers, currencies and
operations answers in order; commands of one batch see each other's writes; a command that
breaks a constraint, names an unknown customer or order, or cannot be finalized is answered on
its own without sinking its neighbours."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from engine.db.database import Database
from engine.money import Money
from tests.engine.payments import checks
from tests.engine.payments.builders import MASTERCARD
from tests.engine.payments.faults import ledger_refuses
from tests.engine.payments.harness import Rig

Body = dict[str, Any]
DECLINING = "4000000000000002"


async def ok(rig: Rig, command: Any) -> Body:
    result = await rig.one(command)
    assert result.status_code == 200, result.body
    return result.body


async def add_order(
    db: Database, customer_id: UUID | str, *, currency: str = "USD", status: str = "pending"
) -> UUID:
    async with db.connection() as conn:
        order_id: UUID = await conn.fetchval(
            """INSERT INTO orders (customer_id, amount, currency, status)
               VALUES ($1, 5000, $2, $3) RETURNING id""",
            UUID(str(customer_id)),
            currency,
            status,
        )
    return order_id


async def test_empty_batch(rig: Rig) -> None:
    assert await rig.service.execute([]) == []
    assert rig.gateway.calls == []


async def test_mixed_batch_answers_in_order(rig: Rig) -> None:
    r = rig.requests
    p1 = await ok(rig, r.purchase(1000))
    a2 = await ok(rig, r.authorize(1000))
    v3 = await ok(rig, r.authorize(500))
    c1, c2, c3 = (UUID(p["customer_id"]) for p in (p1, a2, v3))
    rig.gateway.declining_cards[DECLINING] = "generic_decline"
    declined = r.purchase(700, number=DECLINING)

    results = await rig.service.execute(
        [
            r.purchase(200, customer_id=c1),
            r.capture(a2, 600),
            r.authorize(300, customer_id=c2, number=MASTERCARD),
            r.refund(p1, 400),
            r.void(v3),
            declined,
            r.authorize(150, "EUR", customer_id=c3),
        ]
    )

    assert [x.status_code for x in results] == [200, 200, 200, 200, 200, 402, 200]
    bought, captured, held, refunded, voided, failed, held_eur = (x.body for x in results)
    assert (bought["status"], bought["amount"], bought["customer_id"]) == (
        "succeeded",
        200,
        str(c1),
    )
    assert (captured["id"], captured["status"], captured["amount_captured"]) == (
        a2["id"],
        "captured",
        600,
    )
    assert (held["status"], held["amount"], held["customer_id"]) == ("authorized", 300, str(c2))
    assert held["payment_method"]["brand"] == "mastercard"
    assert (refunded["id"], refunded["amount_refunded"]) == (p1["id"], 400)
    assert (voided["id"], voided["status"]) == (v3["id"], "voided")
    assert (failed["code"], failed["decline_code"]) == ("card_declined", "generic_decline")
    assert (held_eur["status"], held_eur["currency"]) == ("authorized", "EUR")
    assert sorted(c.method for c in rig.gateway.calls[3:]) == [
        "authorize",
        "authorize",
        "capture",
        "purchase",
        "purchase",
        "refund",
        "void",
    ]

    assert await checks.event_types(rig.db, bought["id"]) == ["payment.succeeded"]
    assert await checks.event_types(rig.db, a2["id"]) == ["payment.authorized", "payment.captured"]
    assert await checks.event_types(rig.db, p1["id"]) == ["payment.succeeded", "payment.refunded"]
    assert await checks.event_types(rig.db, v3["id"]) == ["payment.authorized", "payment.voided"]
    assert await checks.event_types(rig.db, failed["payment_id"]) == ["payment.failed"]
    await checks.expect_ledger(rig, c1, captured=1200, refunded=400)
    await checks.expect_ledger(rig, c2, held=300, captured=600)
    await checks.expect_ledger(rig, c3)
    await checks.expect_ledger(rig, c3, held=150, currency="EUR")
    await checks.expect_ledger(rig, declined.customer_id)


async def test_commands_of_one_batch_see_each_other(rig: Rig) -> None:
    payment = await ok(rig, rig.requests.purchase(1000))

    first, too_much, rest = await rig.service.execute(
        [
            rig.requests.refund(payment, 600),
            rig.requests.refund(payment, 600),
            rig.requests.refund(payment, 400),
        ]
    )

    assert (first.status_code, first.body["status"], first.body["amount_refunded"]) == (
        200,
        "succeeded",
        600,
    )
    assert (too_much.status_code, too_much.body["code"]) == (422, "amount_too_large")
    assert (rest.status_code, rest.body["status"], rest.body["amount_refunded"]) == (
        200,
        "refunded",
        1000,
    )
    assert [c.amount for c in rig.gateway.calls_to("refund")] == [600, 400]
    assert await checks.refunds(rig.db, payment["id"]) == [(600, "succeeded"), (400, "succeeded")]
    assert await checks.event_types(rig.db, payment["id"]) == [
        "payment.succeeded",
        "payment.refunded",
        "payment.refunded",
    ]
    await checks.expect_ledger(rig, payment["customer_id"], captured=1000, refunded=1000)


async def test_a_command_breaking_a_constraint_does_not_sink_its_neighbours(rig: Rig) -> None:
    r = rig.requests
    auth = await ok(rig, r.authorize(1000))
    before = r.purchase(100)
    # Only a command built past the API's validation can carry a zero amount; the database's
    # `amount > 0` CHECK refuses it.
    zero = dataclasses.replace(r.purchase(500), money=Money(0, "USD"))
    after = r.purchase(200)

    results = await rig.service.execute(
        [before, r.capture(auth, 400), r.capture(auth, 1000), zero, after]
    )

    assert [x.status_code for x in results] == [200, 200, 422, 422, 200]
    first, capture, second_capture, refused, last = (x.body for x in results)
    assert (first["amount"], last["amount"]) == (100, 200)
    assert (capture["status"], capture["amount_captured"]) == ("captured", 400)
    # One customer's commands take effect in order: the second capture finds it captured.
    assert (second_capture["code"], second_capture["param"]) == (
        "payment_already_captured",
        "payment_id",
    )
    assert (refused["code"], refused["param"]) == ("amount_too_large", "amount")
    assert [c.amount for c in rig.gateway.calls[1:]] == [100, 400, 200]
    assert await checks.operations(rig.db, auth["id"]) == [("capture", "succeeded", 400)]
    assert await checks.count_payments(rig.db, zero.customer_id) == 0
    await checks.expect_ledger(rig, before.customer_id, captured=100)
    await checks.expect_ledger(rig, after.customer_id, captured=200)
    await checks.expect_ledger(rig, auth["customer_id"], captured=400)


async def test_unknown_customer_and_unfit_orders_are_refused_alone(rig: Rig) -> None:
    r = rig.requests
    mine = UUID((await ok(rig, r.purchase(100)))["customer_id"])
    theirs = UUID((await ok(rig, r.purchase(100)))["customer_id"])
    open_order = await add_order(rig.db, mine)
    cancelled = await add_order(rig.db, mine, status="cancelled")
    in_euros = await add_order(rig.db, mine, currency="EUR")
    not_mine = await add_order(rig.db, theirs)
    stranger = uuid4()

    results = await rig.service.execute(
        [
            r.purchase(1000, customer_id=stranger, key="who"),
            r.purchase(1000, customer_id=mine, order_id=open_order),
            r.purchase(1000, customer_id=mine, order_id=uuid4()),
            r.purchase(1000, customer_id=mine, order_id=not_mine),
            r.purchase(1000, customer_id=mine, order_id=in_euros),
            r.purchase(1000, customer_id=mine, order_id=cancelled),
            r.authorize(300, customer_id=mine),
        ]
    )

    answers = [(x.status_code, x.body.get("code"), x.body.get("param")) for x in results]
    assert answers == [
        (404, "resource_missing", "customer_id"),
        (200, None, None),
        (404, "resource_missing", "order_id"),
        (400, "parameter_invalid", "order_id"),
        (400, "parameter_invalid", "currency"),
        (422, "order_not_pending", "order_id"),
        (200, None, None),
    ]
    assert results[1].body["order_id"] == str(open_order)
    assert results[6].body["status"] == "authorized"
    assert len(rig.gateway.calls) == 4
    assert await checks.count_payments(rig.db, stranger) == 0
    assert await checks.count_payments(rig.db, mine) == 3
    stored = await checks.stored_answer(rig.db, r.api_key_id, "who")
    assert (stored.response_status, stored.response_body) == (404, results[0].body)
    await checks.expect_ledger(rig, mine, held=300, captured=1100)


async def test_a_finalize_that_fails_sinks_only_its_own_command(rig: Rig) -> None:
    r = rig.requests
    doomed = UUID((await ok(rig, r.purchase(100)))["customer_id"])
    fine = UUID((await ok(rig, r.purchase(100)))["customer_id"])
    retry = r.purchase(250, customer_id=doomed, key="doomed")

    async with ledger_refuses(rig.db, doomed):
        failed, done = await rig.service.execute([retry, r.purchase(300, customer_id=fine)])

    assert (failed.status_code, failed.body["code"]) == (503, "finalize_failed")
    assert (done.status_code, done.body["status"]) == (200, "succeeded")
    row = await checks.payment_row(rig.db, failed.body["payment_id"])
    assert row["status"] == "processing"
    assert (await rig.one(retry)).status_code == 409
    await checks.expect_ledger(rig, fine, captured=400)
    await checks.expect_ledger(rig, doomed, captured=100)

    # The gateway approved it: recovery books it once, and the key replays that answer.
    rig.clock.advance(timedelta(minutes=1))
    assert await rig.service.recover(older_than=rig.clock.now()) == 1

    replay = await rig.one(retry)
    assert (replay.status_code, replay.replayed, replay.body["status"]) == (200, True, "succeeded")
    assert rig.gateway.references("purchase").count(row["id"]) == 1
    await checks.expect_ledger(rig, doomed, captured=350)


async def test_a_customer_created_in_a_rolled_back_batch_stays_unknown(rig: Rig) -> None:
    # The first command creates its customer inline and then breaks the `amount > 0` CHECK,
    # so its batch (and its singleton retry) roll back; the second names that customer.
    broken = dataclasses.replace(rig.requests.purchase(500), money=Money(0, "USD"))
    named = rig.requests.purchase(100, customer_id=broken.customer_id)

    refused, missing = await rig.service.execute([broken, named])

    assert (refused.status_code, refused.body["code"]) == (422, "amount_too_large")
    assert await checks.count_payments(rig.db, broken.customer_id) == 0
    # A shard that never saw the rolled-back batch answers 404, and so must this one.
    restarted = await rig.restarted()
    fresh = await restarted.one(rig.requests.purchase(100, customer_id=broken.customer_id))
    assert (fresh.status_code, fresh.body["code"]) == (404, "resource_missing")
    assert (missing.status_code, missing.body["code"], missing.body.get("param")) == (
        404,
        "resource_missing",
        "customer_id",
    )
