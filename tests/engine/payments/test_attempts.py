"""Gateway attempts: every call a shard makes to a gateway is recorded with the payment it was
for (the same transaction that settles it), in call order, with its outcome; the payment records
the gateway that handled it, and `PaymentReads.get` shows both."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from engine.db.database import Database
from engine.gateways.attempts import Attempt
from engine.gateways.base import GatewayResult
from engine.payments.reads import PaymentReads
from tests.engine.payments import checks
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import DROP, REVIEW, TIMEOUT, TOKEN_CARD, FakeGateway, decline
from tests.engine.payments.harness import Rig, engine_settings

Body = dict[str, Any]


async def _attempts(rig: Rig, payment_id: str | UUID) -> list[Attempt]:
    return (await PaymentReads(rig.db).get(UUID(str(payment_id)))).attempts


def _summary(attempts: list[Attempt]) -> list[tuple[str, str, str, str | None]]:
    return [(a.gateway, a.kind, a.outcome, a.decline_code) for a in attempts]


async def _ok(rig: Rig, command: Any) -> Body:
    result = await rig.one(command)
    assert result.status_code == 200, result.body
    body: Body = result.body
    return body


async def test_a_purchase_records_its_gateway_and_its_approved_charge(rig: Rig) -> None:
    body = await _ok(rig, rig.requests.purchase(1200))

    [attempt] = await _attempts(rig, body["id"])
    assert body["gateway"] == "fake"
    assert _summary([attempt]) == [("fake", "charge", "approved", None)]
    assert attempt.reference == UUID(body["id"])
    assert attempt.gateway_transaction_id == body["gateway_transaction_id"]
    assert attempt.latency_ms >= 0
    assert attempt.created_at is not None


async def test_every_operation_of_a_payment_is_recorded_in_order(rig: Rig) -> None:
    r = rig.requests
    auth = await _ok(rig, r.authorize(1000))
    await _ok(rig, r.capture(auth, 700))
    await _ok(rig, r.refund(auth, 300))

    attempts = await _attempts(rig, auth["id"])
    assert _summary(attempts) == [
        ("fake", "authorize", "approved", None),
        ("fake", "capture", "approved", None),
        ("fake", "refund", "approved", None),
    ]
    # An operation's attempt names the operation the gateway was told, not the payment.
    assert attempts[1].reference != UUID(auth["id"])
    assert attempts[1].reference != attempts[2].reference

    voided = await _ok(rig, r.authorize(500))
    await _ok(rig, r.void(voided))
    assert [a.kind for a in await _attempts(rig, voided["id"])] == ["authorize", "void"]


async def test_declines_and_errors_are_recorded_with_their_outcome(rig: Rig) -> None:
    rig.gateway.script(decline("insufficient_funds"), TIMEOUT)

    declined = await rig.one(rig.requests.purchase(1000))
    failed = await rig.one(rig.requests.purchase(1000))

    assert (declined.status_code, failed.status_code) == (402, 502)
    assert _summary(await _attempts(rig, declined.body["payment_id"])) == [
        ("fake", "charge", "declined", "insufficient_funds")
    ]
    assert _summary(await _attempts(rig, failed.body["payment_id"])) == [
        ("fake", "charge", "error", None)
    ]


async def test_an_ambiguous_call_is_recorded_and_so_is_the_lookup_that_settles_it(
    rig: Rig,
) -> None:
    rig.gateway.script(DROP)
    lost = await rig.one(rig.requests.purchase(1000, key="lost"))
    assert lost.status_code == 504
    payment_id = lost.body["payment_id"]
    assert _summary(await _attempts(rig, payment_id)) == [("fake", "charge", "ambiguous", None)]

    rig.clock.advance(timedelta(minutes=1))
    assert await rig.service.recover(older_than=rig.clock.now()) == 1

    attempts = await _attempts(rig, payment_id)
    assert _summary(attempts) == [
        ("fake", "charge", "ambiguous", None),
        ("fake", "lookup", "approved", None),
    ]
    assert attempts[1].gateway_transaction_id is not None
    # Recovery asked; it never charged again.
    assert len(rig.gateway.calls_to("purchase")) == 1


async def test_a_routed_payment_and_its_operations_go_to_its_gateway(
    database: Database, requests: Requests
) -> None:
    other = FakeGateway(name="other")
    settings = engine_settings().model_copy(
        update={"gateways": ("fake", "other"), "gateway_routes": {"EUR": ("other",)}}
    )
    rig = await Rig.build(database, requests, settings=settings, more_gateways=(other,))

    euros = await _ok(rig, requests.authorize(1000, "EUR"))
    await _ok(rig, requests.capture(euros, 400))
    dollars = await _ok(rig, requests.purchase(1000, "USD"))

    assert (euros["gateway"], dollars["gateway"]) == ("other", "fake")
    assert [c.method for c in other.calls] == ["authorize", "capture"]
    assert [c.method for c in rig.gateway.calls] == ["purchase"]
    assert [a.gateway for a in await _attempts(rig, euros["id"])] == ["other", "other"]


async def test_a_payment_held_for_review_waits_processing_until_lookup_settles_it(
    rig: Rig,
) -> None:
    rig.gateway.script(REVIEW)
    held = await rig.one(rig.requests.purchase(1000, key="held"))

    assert (held.status_code, held.body["status"]) == (202, "processing")
    payment_id = UUID(held.body["id"])
    assert _summary(await _attempts(rig, payment_id)) == [("fake", "charge", "review", None)]
    rig.clock.advance(timedelta(minutes=2))
    assert await rig.service.recover(older_than=rig.clock.now()) == 0
    assert (await checks.payment_row(rig.db, payment_id))["status"] == "processing"

    # The review approves it: the next sweep's lookup settles it, charged once.
    rig.gateway.records[payment_id] = GatewayResult(True, "fk_reviewed", card=TOKEN_CARD)
    assert await rig.service.recover(older_than=rig.clock.now()) == 1

    assert (await checks.payment_row(rig.db, payment_id))["status"] == "succeeded"
    assert [a.outcome for a in await _attempts(rig, payment_id)] == ["review", "approved"]
    assert len(rig.gateway.calls_to("purchase")) == 1
