"""Authorization expiry: `PaymentService.expire_authorizations()` with the clock moved past
`authorization_window_h` expires the shard's authorizations, releases their holds in the ledger
and emits `payment.expired`; an authorization with a capture in flight is left to that capture.
The shard sends nothing to the gateway: the void there is a job queued with the expiry
(tests/engine/payments/test_expiry_voids.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from engine.payments.commands import Command
from engine.sharding import shard_of
from tests.engine.payments import checks
from tests.engine.payments.fakes import DROP, TIMEOUT
from tests.engine.payments.harness import AUTHORIZATION_WINDOW_H, Rig, engine_settings

WINDOW = timedelta(hours=AUTHORIZATION_WINDOW_H)

Body = dict[str, Any]


async def ok(rig: Rig, command: Command) -> Body:
    result = await rig.one(command)
    assert result.status_code == 200, result.body
    return result.body


async def test_an_authorization_expires_once_its_window_has_passed(rig: Rig) -> None:
    payment = await ok(rig, rig.requests.authorize(1000))
    customer = payment["customer_id"]
    await checks.expect_ledger(rig, customer, held=1000)  # the book holds the customer now

    rig.clock.advance(WINDOW - timedelta(seconds=1))
    assert await rig.service.expire_authorizations() == 0
    assert (await checks.payment_row(rig.db, payment["id"]))["status"] == "authorized"

    rig.clock.advance(timedelta(seconds=1))
    assert await rig.service.expire_authorizations() == 1

    row = await checks.payment_row(rig.db, payment["id"])
    assert (row["status"], row["amount_capturable"], row["amount_captured"]) == ("expired", 0, 0)
    assert await checks.event_types(rig.db, payment["id"]) == [
        "payment.authorized",
        "payment.expired",
    ]
    payload = await checks.last_event_payload(rig.db, payment["id"])
    assert (payload["id"], payload["status"]) == (payment["id"], "expired")
    assert await checks.ledger_entries(rig.db, customer) == [("held", -1000), ("held", 1000)]
    await checks.expect_ledger(rig, customer)
    assert [c.method for c in rig.gateway.calls] == ["authorize"]

    # Expired once: the next sweep finds nothing.
    rig.clock.advance(timedelta(hours=1))
    assert await rig.service.expire_authorizations() == 0
    assert await checks.event_types(rig.db, payment["id"]) == [
        "payment.authorized",
        "payment.expired",
    ]


async def test_only_authorizations_expire(rig: Rig) -> None:
    r = rig.requests
    held = await ok(rig, r.authorize(1000))
    customer = held["customer_id"]
    captured = await ok(rig, r.authorize(500, customer_id=customer))
    await ok(rig, r.capture(captured, 500))
    voided = await ok(rig, r.authorize(300, customer_id=customer))
    await ok(rig, r.void(voided))
    bought = await ok(rig, r.purchase(200, customer_id=customer))
    rig.clock.advance(WINDOW * 2)

    assert await rig.service.expire_authorizations() == 1

    statuses = [
        (await checks.payment_row(rig.db, p["id"]))["status"]
        for p in (held, captured, voided, bought)
    ]
    assert statuses == ["expired", "captured", "voided", "succeeded"]
    await checks.expect_ledger(rig, customer, captured=700)


async def test_the_window_comes_from_the_settings(rig: Rig) -> None:
    short = await Rig.build(
        rig.db, rig.requests, settings=engine_settings(authorization_window_h=1)
    )
    payment = await ok(short, short.requests.authorize(1000))
    row = await checks.payment_row(short.db, payment["id"])
    assert row["authorization_expires_at"] == short.clock.now() + timedelta(hours=1)

    short.clock.advance(timedelta(hours=1))

    assert await short.service.expire_authorizations() == 1
    await checks.expect_ledger(short, payment["customer_id"])


async def test_a_capture_after_the_window_is_refused_before_the_sweep(rig: Rig) -> None:
    payment = await ok(rig, rig.requests.authorize(1000))
    rig.clock.advance(WINDOW)

    refused = await rig.one(rig.requests.capture(payment))

    assert (refused.status_code, refused.body["code"]) == (422, "authorization_expired")
    assert rig.gateway.calls_to("capture") == []
    assert await rig.service.expire_authorizations() == 1
    await checks.expect_ledger(rig, payment["customer_id"])


async def test_an_authorization_with_a_capture_in_flight_is_left_alone(rig: Rig) -> None:
    payment = await ok(rig, rig.requests.authorize(1000))
    rig.gateway.script(DROP)
    in_flight = await rig.one(rig.requests.capture(payment, 800))
    assert in_flight.status_code == 504
    rig.clock.advance(WINDOW + timedelta(minutes=1))

    assert await rig.service.expire_authorizations() == 0

    assert (await checks.payment_row(rig.db, payment["id"]))["status"] == "authorized"
    await checks.expect_ledger(rig, payment["customer_id"], held=1000)

    # The gateway took the capture: recovery settles it, and then there is nothing to expire.
    assert await rig.service.recover(older_than=rig.clock.now()) == 1
    assert await rig.service.expire_authorizations() == 0
    row = await checks.payment_row(rig.db, payment["id"])
    assert (row["status"], row["amount_captured"]) == ("captured", 800)
    assert await checks.event_types(rig.db, payment["id"]) == [
        "payment.authorized",
        "payment.captured",
    ]
    await checks.expect_ledger(rig, payment["customer_id"], captured=800)


async def test_a_failed_capture_does_not_keep_the_authorization_alive(rig: Rig) -> None:
    payment = await ok(rig, rig.requests.authorize(1000))
    rig.gateway.script(TIMEOUT)
    assert (await rig.one(rig.requests.capture(payment))).status_code == 502
    rig.clock.advance(WINDOW)

    assert await rig.service.expire_authorizations() == 1

    assert (await checks.payment_row(rig.db, payment["id"]))["status"] == "expired"
    assert await checks.operations(rig.db, payment["id"]) == [("capture", "failed", 1000)]
    await checks.expect_ledger(rig, payment["customer_id"])


async def test_a_sweep_expires_only_its_own_shard(rig: Rig) -> None:
    # Authorizations until both halves of the slots have one, then two shards of two.
    held: dict[int, list[Any]] = {0: [], 1: []}
    while not (held[0] and held[1]):
        command = rig.requests.authorize(1000)
        held[shard_of(command.customer_id, 2)].append(await ok(rig, command))
    shards = [
        await Rig.build(rig.db, rig.requests, shard=i, shards=2, clock=rig.clock) for i in (0, 1)
    ]
    rig.clock.advance(WINDOW)

    assert await shards[0].service.expire_authorizations() == len(held[0])

    assert {(await checks.payment_row(rig.db, p["id"]))["status"] for p in held[0]} == {"expired"}
    assert {(await checks.payment_row(rig.db, p["id"]))["status"] for p in held[1]} == {
        "authorized"
    }
    assert await shards[1].service.expire_authorizations() == len(held[1])
    assert {(await checks.payment_row(rig.db, p["id"]))["status"] for p in held[1]} == {"expired"}
