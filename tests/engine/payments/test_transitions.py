"""Every transition of the payment state machine through `PaymentService.execute`, and every
illegal one answered 422 with its code.

After each command: the answer, the payment and operation rows, the refunds rows, one outbox
event per state change, the stored idempotency answer, and the ledger (entries, payment balances
and the shard's book agree). Expiry has its own module (test_expiry.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from engine.errors import InvalidRequest
from engine.ledger.entries import Balance
from engine.payments.commands import Command
from tests.engine.payments import checks
from tests.engine.payments.builders import MASTERCARD, MAX_AMOUNT, Requests
from tests.engine.payments.fakes import DROP, TIMEOUT, decline
from tests.engine.payments.harness import AUTHORIZATION_WINDOW_H, Rig

Body = dict[str, Any]


async def purchased(rig: Rig, amount: int = 1000) -> Body:
    result = await rig.one(rig.requests.purchase(amount))
    assert result.status_code == 200, result.body
    return result.body


async def authorized(rig: Rig, amount: int = 1000) -> Body:
    result = await rig.one(rig.requests.authorize(amount))
    assert result.status_code == 200, result.body
    return result.body


async def test_purchase_succeeds(rig: Rig) -> None:
    result = await rig.one(rig.requests.purchase(1250, number=MASTERCARD, key="buy"))

    assert (result.status_code, result.replayed) == (200, False)
    body = result.body
    [call] = rig.gateway.calls
    assert (call.method, call.reference, call.amount, call.currency) == (
        "purchase",
        UUID(body["id"]),
        1250,
        "USD",
    )
    assert body["status"] == "succeeded"
    assert (body["amount"], body["amount_capturable"], body["amount_captured"]) == (1250, 0, 1250)
    assert (
        body["gateway_transaction_id"] == rig.gateway.records[call.reference].gateway_transaction_id
    )
    assert body["payment_method"] == {
        "type": "card",
        "brand": "mastercard",
        "last4": "4444",
        "fingerprint": body["payment_method"]["fingerprint"],
    }
    assert len(body["payment_method"]["fingerprint"]) == 16
    row = await checks.payment_row(rig.db, body["id"])
    assert (row["status"], row["transaction_type"], row["shard"]) == (
        "succeeded",
        "purchase",
        rig.shard,
    )
    assert row["payment_method"]["bin"] == "555555"
    assert row["authorization_expires_at"] is None
    assert await checks.operations(rig.db, body["id"]) == []
    assert await checks.event_types(rig.db, body["id"]) == ["payment.succeeded"]
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "buy")
    assert (stored.status, stored.response_status, stored.response_body) == (
        "completed",
        200,
        body,
    )
    assert stored.resource_id == UUID(body["id"])
    await checks.expect_ledger(rig, body["customer_id"], captured=1250)


async def test_authorize_holds_until_the_window_ends(rig: Rig) -> None:
    result = await rig.one(rig.requests.authorize(800, key="hold"))

    assert result.status_code == 200
    body = result.body
    assert (body["status"], body["amount_capturable"], body["amount_captured"]) == (
        "authorized",
        800,
        0,
    )
    assert [c.method for c in rig.gateway.calls] == ["authorize"]
    row = await checks.payment_row(rig.db, body["id"])
    assert row["authorization_expires_at"] == rig.clock.now() + timedelta(
        hours=AUTHORIZATION_WINDOW_H
    )
    assert await checks.event_types(rig.db, body["id"]) == ["payment.authorized"]
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "hold")
    assert (stored.response_status, stored.response_body) == (200, body)
    await checks.expect_ledger(rig, body["customer_id"], held=800)


async def test_full_capture(rig: Rig) -> None:
    payment = await authorized(rig, 1000)

    result = await rig.one(rig.requests.capture(payment, key="take"))

    assert result.status_code == 200
    assert (
        result.body["status"],
        result.body["amount_capturable"],
        result.body["amount_captured"],
    ) == ("captured", 0, 1000)
    [capture] = rig.gateway.calls_to("capture")
    assert (capture.amount, capture.gateway_transaction_id) == (
        1000,
        payment["gateway_transaction_id"],
    )
    assert await checks.operations(rig.db, payment["id"]) == [("capture", "succeeded", 1000)]
    assert await checks.event_types(rig.db, payment["id"]) == [
        "payment.authorized",
        "payment.captured",
    ]
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "take")
    assert (stored.response_status, stored.response_body) == (200, result.body)
    # The capture is addressed to the gateway by the operation's own id.
    assert stored.resource_id == capture.reference
    await checks.expect_ledger(rig, payment["customer_id"], captured=1000)


async def test_partial_capture_releases_the_rest(rig: Rig) -> None:
    payment = await authorized(rig, 1000)

    result = await rig.one(rig.requests.capture(payment, 600))

    assert result.status_code == 200
    assert (
        result.body["status"],
        result.body["amount_capturable"],
        result.body["amount_captured"],
    ) == ("captured", 0, 600)
    assert rig.gateway.calls_to("capture")[0].amount == 600
    assert await checks.operations(rig.db, payment["id"]) == [("capture", "succeeded", 600)]
    assert await checks.ledger_entries(rig.db, payment["customer_id"]) == [
        ("captured", 600),
        ("held", -1000),
        ("held", 1000),
    ]
    await checks.expect_ledger(rig, payment["customer_id"], captured=600)


async def test_void_releases_the_hold(rig: Rig) -> None:
    payment = await authorized(rig, 700)

    result = await rig.one(rig.requests.void(payment, key="undo"))

    assert result.status_code == 200
    assert (result.body["status"], result.body["amount_capturable"]) == ("voided", 0)
    assert [c.method for c in rig.gateway.calls] == ["authorize", "void"]
    assert await checks.operations(rig.db, payment["id"]) == [("void", "succeeded", 700)]
    assert await checks.event_types(rig.db, payment["id"]) == [
        "payment.authorized",
        "payment.voided",
    ]
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "undo")
    assert (stored.response_status, stored.response_body) == (200, result.body)
    await checks.expect_ledger(rig, payment["customer_id"])


@pytest.mark.parametrize("kind", ["purchase", "authorize"])
@pytest.mark.parametrize("code", ["insufficient_funds", "expired_card"])
async def test_decline_fails_the_payment_with_402(rig: Rig, kind: str, code: str) -> None:
    rig.gateway.script(decline(code))
    build = rig.requests.purchase if kind == "purchase" else rig.requests.authorize
    command = build(900, key="no")

    result = await rig.one(command)

    assert result.status_code == 402
    payment_id = UUID(result.body["payment_id"])
    assert result.body == {
        "type": "card_error",
        "code": "card_declined",
        "message": f"declined: {code}",
        "decline_code": code,
        "payment_id": str(payment_id),
    }
    row = await checks.payment_row(rig.db, payment_id)
    assert (row["status"], row["failure_code"], row["decline_code"]) == (
        "failed",
        "card_declined",
        code,
    )
    assert (row["amount_capturable"], row["amount_captured"]) == (0, 0)
    assert row["authorization_expires_at"] is None
    assert await checks.event_types(rig.db, payment_id) == ["payment.failed"]
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "no")
    assert (stored.response_status, stored.response_body) == (402, result.body)
    assert await checks.ledger_entries(rig.db, command.customer_id) == []
    await checks.expect_ledger(rig, command.customer_id)


async def test_gateway_unreachable_fails_the_payment_with_502(rig: Rig) -> None:
    rig.gateway.script(TIMEOUT)
    command = rig.requests.purchase(500)

    result = await rig.one(command)

    assert (result.status_code, result.body["code"]) == (502, "gateway_error")
    row = await checks.payment_row(rig.db, result.body["payment_id"])
    assert (row["status"], row["failure_code"], row["decline_code"]) == (
        "failed",
        "gateway_error",
        None,
    )
    assert rig.gateway.records == {}
    assert await checks.event_types(rig.db, row["id"]) == ["payment.failed"]
    await checks.expect_ledger(rig, command.customer_id)


async def test_failed_capture_leaves_the_authorization_capturable(rig: Rig) -> None:
    payment = await authorized(rig, 1000)
    rig.gateway.script(TIMEOUT)

    failed = await rig.one(rig.requests.capture(payment))
    assert (failed.status_code, failed.body["code"]) == (502, "gateway_error")
    assert (await checks.payment_row(rig.db, payment["id"]))["status"] == "authorized"
    await checks.expect_ledger(rig, payment["customer_id"], held=1000)

    retried = await rig.one(rig.requests.capture(payment))

    assert (retried.status_code, retried.body["status"]) == (200, "captured")
    assert await checks.operations(rig.db, payment["id"]) == [
        ("capture", "failed", 1000),
        ("capture", "succeeded", 1000),
    ]
    assert await checks.event_types(rig.db, payment["id"]) == [
        "payment.authorized",
        "payment.captured",
    ]
    await checks.expect_ledger(rig, payment["customer_id"], captured=1000)


async def test_partial_then_full_refund(rig: Rig) -> None:
    payment = await purchased(rig, 1000)

    partial = await rig.one(rig.requests.refund(payment, 300, key="r1", reason="duplicate"))

    assert partial.status_code == 200
    assert (partial.body["status"], partial.body["amount_refunded"]) == ("succeeded", 300)
    assert [(r["amount"], r["status"]) for r in partial.body["refunds"]] == [(300, "succeeded")]
    assert await checks.refunds(rig.db, payment["id"]) == [(300, "succeeded")]
    assert (await checks.payment_row(rig.db, payment["id"]))["amount_refund_pending"] == 0
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "r1")
    assert (stored.response_status, stored.response_body) == (200, partial.body)
    await checks.expect_ledger(rig, payment["customer_id"], captured=1000, refunded=300)

    rest = await rig.one(rig.requests.refund(payment))

    assert rest.status_code == 200
    assert (rest.body["status"], rest.body["amount_refunded"]) == ("refunded", 1000)
    assert [c.amount for c in rig.gateway.calls_to("refund")] == [300, 700]
    assert await checks.refunds(rig.db, payment["id"]) == [(300, "succeeded"), (700, "succeeded")]
    assert await checks.operations(rig.db, payment["id"]) == [
        ("refund", "succeeded", 300),
        ("refund", "succeeded", 700),
    ]
    assert await checks.event_types(rig.db, payment["id"]) == [
        "payment.succeeded",
        "payment.refunded",
        "payment.refunded",
    ]
    await checks.expect_ledger(rig, payment["customer_id"], captured=1000, refunded=1000)


async def test_refund_of_a_partial_capture(rig: Rig) -> None:
    payment = await authorized(rig, 1000)
    assert (await rig.one(rig.requests.capture(payment, 400))).status_code == 200

    result = await rig.one(rig.requests.refund(payment))

    assert (result.status_code, result.body["status"], result.body["amount_refunded"]) == (
        200,
        "refunded",
        400,
    )
    await checks.expect_ledger(rig, payment["customer_id"], captured=400, refunded=400)


async def test_declined_refund_releases_its_reservation(rig: Rig) -> None:
    payment = await purchased(rig, 1000)
    rig.gateway.script(decline("processing_error"))

    declined = await rig.one(rig.requests.refund(payment, 1000))

    assert (declined.status_code, declined.body["decline_code"]) == (402, "processing_error")
    row = await checks.payment_row(rig.db, payment["id"])
    assert (row["status"], row["amount_refunded"], row["amount_refund_pending"]) == (
        "succeeded",
        0,
        0,
    )
    assert await checks.refunds(rig.db, payment["id"]) == [(1000, "failed")]
    assert await checks.event_types(rig.db, payment["id"]) == ["payment.succeeded"]
    await checks.expect_ledger(rig, payment["customer_id"], captured=1000)

    again = await rig.one(rig.requests.refund(payment, 1000))

    assert (again.status_code, again.body["status"]) == (200, "refunded")
    await checks.expect_ledger(rig, payment["customer_id"], captured=1000, refunded=1000)


# --- illegal transitions ------------------------------------------------------------------


def operation_on(
    rig: Rig, operation: str, payment: Body, amount: int | None, *, key: str
) -> Command:
    if operation == "capture":
        return rig.requests.capture(payment, amount, key=key)
    if operation == "void":
        return rig.requests.void(payment, key=key)
    return rig.requests.refund(payment, amount, key=key)


Setup = Callable[[Rig], Awaitable[tuple[Body, Balance]]]


async def _authorized(rig: Rig) -> tuple[Body, Balance]:
    return await authorized(rig, 1000), Balance(held=1000)


async def _authorized_past_window(rig: Rig) -> tuple[Body, Balance]:
    payment = await authorized(rig, 1000)
    rig.clock.advance(timedelta(hours=AUTHORIZATION_WINDOW_H, seconds=1))
    return payment, Balance(held=1000)


async def _captured(rig: Rig) -> tuple[Body, Balance]:
    payment = await authorized(rig, 1000)
    assert (await rig.one(rig.requests.capture(payment, 600))).status_code == 200
    return payment, Balance(captured=600)


async def _voided(rig: Rig) -> tuple[Body, Balance]:
    payment = await authorized(rig, 1000)
    assert (await rig.one(rig.requests.void(payment))).status_code == 200
    return payment, Balance()


async def _expired(rig: Rig) -> tuple[Body, Balance]:
    payment = await authorized(rig, 1000)
    rig.clock.advance(timedelta(hours=AUTHORIZATION_WINDOW_H, seconds=1))
    assert await rig.service.expire_authorizations() == 1
    return payment, Balance()


async def _succeeded(rig: Rig) -> tuple[Body, Balance]:
    return await purchased(rig, 1000), Balance(captured=1000)


async def _partly_refunded(rig: Rig) -> tuple[Body, Balance]:
    payment = await purchased(rig, 1000)
    assert (await rig.one(rig.requests.refund(payment, 700))).status_code == 200
    return payment, Balance(captured=1000, refunded=700)


async def _refunded(rig: Rig) -> tuple[Body, Balance]:
    payment = await purchased(rig, 1000)
    assert (await rig.one(rig.requests.refund(payment))).status_code == 200
    return payment, Balance(captured=1000, refunded=1000)


async def _failed(rig: Rig) -> tuple[Body, Balance]:
    rig.gateway.script(decline())
    command = rig.requests.authorize(1000)
    result = await rig.one(command)
    assert result.status_code == 402
    return {"id": result.body["payment_id"], "customer_id": command.customer_id}, Balance()


SETUPS: dict[str, Setup] = {
    "authorized": _authorized,
    "authorized_past_window": _authorized_past_window,
    "captured": _captured,
    "voided": _voided,
    "expired": _expired,
    "succeeded": _succeeded,
    "partly_refunded": _partly_refunded,
    "refunded": _refunded,
    "failed": _failed,
}

ILLEGAL = [
    # (state, operation, amount, code, param)
    ("captured", "capture", None, "payment_already_captured", "payment_id"),
    ("voided", "capture", None, "payment_not_capturable", "payment_id"),
    ("expired", "capture", None, "authorization_expired", "payment_id"),
    ("succeeded", "capture", None, "payment_not_capturable", "payment_id"),
    ("refunded", "capture", None, "payment_not_capturable", "payment_id"),
    ("failed", "capture", None, "payment_not_capturable", "payment_id"),
    ("authorized", "capture", 1001, "amount_too_large", "amount"),
    ("authorized_past_window", "capture", None, "authorization_expired", "payment_id"),
    ("captured", "void", None, "payment_not_voidable", "payment_id"),
    ("voided", "void", None, "payment_not_voidable", "payment_id"),
    ("expired", "void", None, "payment_not_voidable", "payment_id"),
    ("succeeded", "void", None, "payment_not_voidable", "payment_id"),
    ("failed", "void", None, "payment_not_voidable", "payment_id"),
    ("authorized", "refund", None, "payment_not_refundable", "payment_id"),
    ("voided", "refund", None, "payment_not_refundable", "payment_id"),
    ("expired", "refund", None, "payment_not_refundable", "payment_id"),
    ("failed", "refund", None, "payment_not_refundable", "payment_id"),
    ("refunded", "refund", None, "payment_already_refunded", "payment_id"),
    ("succeeded", "refund", 1001, "amount_too_large", "amount"),
    ("captured", "refund", 601, "amount_too_large", "amount"),
    ("partly_refunded", "refund", 301, "amount_too_large", "amount"),
]


@pytest.mark.parametrize(
    ("state", "operation", "amount", "code", "param"),
    ILLEGAL,
    ids=[f"{o}-{s}{'' if a is None else f'-{a}'}" for s, o, a, _, _ in ILLEGAL],
)
async def test_illegal_transition_is_refused_with_422(
    rig: Rig, state: str, operation: str, amount: int | None, code: str, param: str
) -> None:
    payment, balance = await SETUPS[state](rig)
    before = dict(await checks.payment_row(rig.db, payment["id"]))
    operations = await checks.operations(rig.db, payment["id"])
    events = await checks.event_types(rig.db, payment["id"])
    calls = len(rig.gateway.calls)
    result = await rig.one(operation_on(rig, operation, payment, amount, key="illegal"))

    assert result.status_code == 422
    assert (result.body["type"], result.body["code"], result.body["param"]) == (
        "invalid_request_error",
        code,
        param,
    )
    assert len(rig.gateway.calls) == calls
    assert dict(await checks.payment_row(rig.db, payment["id"])) == before
    assert await checks.operations(rig.db, payment["id"]) == operations
    assert await checks.event_types(rig.db, payment["id"]) == events
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "illegal")
    assert (stored.status, stored.response_status, stored.response_body) == (
        "completed",
        422,
        result.body,
    )
    await checks.expect_ledger(
        rig,
        payment["customer_id"],
        held=balance.held,
        captured=balance.captured,
        refunded=balance.refunded,
    )


@pytest.mark.parametrize("operation", ["capture", "void", "refund"])
async def test_operation_on_an_unknown_payment_is_404(rig: Rig, operation: str) -> None:
    missing = {"id": uuid4(), "customer_id": uuid4()}

    result = await rig.one(operation_on(rig, operation, missing, None, key="ghost"))

    assert (result.status_code, result.body["code"], result.body["param"]) == (
        404,
        "resource_missing",
        "payment_id",
    )
    assert rig.gateway.calls == []
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "ghost")
    assert (stored.response_status, stored.response_body) == (404, result.body)


@pytest.mark.parametrize("operation", ["capture", "refund"])
def test_an_amount_beyond_the_deployments_maximum_is_400(operation: str) -> None:
    requests = Requests(uuid4())
    payment = {"id": uuid4(), "customer_id": uuid4()}
    with pytest.raises(InvalidRequest, match=f"at most {MAX_AMOUNT}") as refused:
        getattr(requests, operation)(payment, MAX_AMOUNT + 1)
    assert refused.value.param == "amount"
    getattr(requests, operation)(payment, MAX_AMOUNT)


@pytest.mark.parametrize("operation", ["capture", "void"])
async def test_a_settlement_while_another_is_in_flight_is_refused(rig: Rig, operation: str) -> None:
    payment = await authorized(rig, 1000)
    rig.gateway.script(DROP)
    assert (await rig.one(rig.requests.capture(payment))).status_code == 504

    refused = await rig.one(operation_on(rig, operation, payment, None, key="second"))

    assert (refused.status_code, refused.body["code"], refused.body["param"]) == (
        422,
        "payment_settlement_in_progress",
        "payment_id",
    )
    assert [c.method for c in rig.gateway.calls] == ["authorize", "capture"]
    assert await checks.operations(rig.db, payment["id"]) == [("capture", "processing", 1000)]
    # Refused by the one-live-settlement index: the transaction rolled back, claim and all, so
    # nothing is stored and a retry once the capture in flight has settled is answered afresh.
    assert await checks.stored_answers(rig.db, rig.requests.api_key_id, "second") == 0
    await checks.expect_ledger(rig, payment["customer_id"], held=1000)


async def test_a_refund_in_flight_holds_its_amount(rig: Rig) -> None:
    payment = await purchased(rig, 1000)
    rig.gateway.script(DROP)
    assert (await rig.one(rig.requests.refund(payment, 600))).status_code == 504
    row = await checks.payment_row(rig.db, payment["id"])
    assert (row["status"], row["amount_refunded"], row["amount_refund_pending"]) == (
        "succeeded",
        0,
        600,
    )

    too_much = await rig.one(rig.requests.refund(payment, 401))
    rest = await rig.one(rig.requests.refund(payment))
    nothing_left = await rig.one(rig.requests.refund(payment))

    assert (too_much.status_code, too_much.body["code"]) == (422, "amount_too_large")
    assert (rest.status_code, rest.body["status"], rest.body["amount_refunded"]) == (
        200,
        "succeeded",
        400,
    )
    assert (nothing_left.status_code, nothing_left.body["code"]) == (
        422,
        "payment_already_refunded",
    )
    assert [c.amount for c in rig.gateway.calls_to("refund")] == [600, 400]
    await checks.expect_ledger(rig, payment["customer_id"], captured=1000, refunded=400)
