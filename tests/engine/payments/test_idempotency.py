"""Idempotency keys on the money path: a repeat of the same request replays the stored answer,
a different request under the same key is refused (422), a repeat while the first is still in
flight is refused (409), and repeats inside one batch share the first command's result. Nothing
reaches the gateway twice."""

from __future__ import annotations

from uuid import UUID

from tests.engine.payments import checks
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import LOSE, decline
from tests.engine.payments.harness import Rig


async def test_same_key_and_body_replays(rig: Rig) -> None:
    first = await rig.one(rig.requests.purchase(1000, email="same@example.com", key="k"))
    # A new request object (its own correlation id) with the same body.
    again = await rig.one(rig.requests.purchase(1000, email="same@example.com", key="k"))

    assert (first.status_code, first.replayed) == (200, False)
    assert (again.status_code, again.replayed) == (200, True)
    assert again.body == first.body
    assert len(rig.gateway.calls) == 1
    customer = first.body["customer_id"]
    assert await checks.count_payments(rig.db, customer) == 1
    assert await checks.event_types(rig.db, first.body["id"]) == ["payment.succeeded"]
    await checks.expect_ledger(rig, customer, captured=1000)


async def test_other_body_under_the_same_key_is_refused(rig: Rig) -> None:
    first = await rig.one(rig.requests.purchase(1000, email="a@example.com", key="k"))
    other = rig.requests.purchase(2000, email="a@example.com", key="k")

    refused = await rig.one(other)

    assert (refused.status_code, refused.replayed) == (422, False)
    assert (refused.body["type"], refused.body["code"], refused.body["param"]) == (
        "idempotency_error",
        "idempotency_key_reused",
        "Idempotency-Key",
    )
    assert len(rig.gateway.calls) == 1
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "k")
    assert (stored.response_status, stored.response_body) == (200, first.body)
    # The other body names another inline customer (derived from the hash): never created.
    assert other.customer_id != UUID(first.body["customer_id"])
    assert await checks.count_payments(rig.db, other.customer_id) == 0


async def test_inline_customer_is_the_same_on_every_repeat(rig: Rig) -> None:
    command = rig.requests.authorize(500, key="inline")
    assert command.new_customer is not None
    repeat = rig.requests.authorize(500, email=command.new_customer.email, key="inline")
    assert repeat.customer_id == command.customer_id

    first = await rig.one(command)
    again = await rig.one(repeat)

    assert again.replayed
    assert again.body == first.body
    assert first.body["customer_id"] == str(command.customer_id)
    assert await checks.count_payments(rig.db, command.customer_id) == 1


async def test_a_decline_replays_without_a_second_charge(rig: Rig) -> None:
    rig.gateway.script(decline("insufficient_funds"))
    command = rig.requests.purchase(1000, key="d")

    first = await rig.one(command)
    again = await rig.one(command)

    assert (first.status_code, again.status_code, again.replayed) == (402, 402, True)
    assert again.body == first.body
    assert len(rig.gateway.calls) == 1


async def test_a_refusal_replays_even_after_the_state_changed(rig: Rig) -> None:
    payment = (await rig.one(rig.requests.authorize(1000))).body
    refund = rig.requests.refund(payment, key="early")
    refused = await rig.one(refund)
    assert (refused.status_code, refused.body["code"]) == (422, "payment_not_refundable")
    assert (await rig.one(rig.requests.capture(payment))).status_code == 200

    again = await rig.one(refund)

    assert (again.status_code, again.replayed, again.body) == (422, True, refused.body)
    assert rig.gateway.calls_to("refund") == []
    await checks.expect_ledger(rig, payment["customer_id"], captured=1000)


async def test_a_repeated_capture_replays_instead_of_already_captured(rig: Rig) -> None:
    payment = (await rig.one(rig.requests.authorize(1000))).body
    capture = rig.requests.capture(payment, 400, key="cap")

    first = await rig.one(capture)
    again = await rig.one(rig.requests.capture(payment, 400, key="cap"))

    assert (first.status_code, again.status_code, again.replayed) == (200, 200, True)
    assert again.body == first.body
    assert len(rig.gateway.calls_to("capture")) == 1
    assert await checks.operations(rig.db, payment["id"]) == [("capture", "succeeded", 400)]
    await checks.expect_ledger(rig, payment["customer_id"], captured=400)


async def test_a_repeat_while_the_first_is_processing_is_409(rig: Rig) -> None:
    rig.gateway.script(LOSE)
    command = rig.requests.purchase(1000, key="busy")
    first = await rig.one(command)
    assert (first.status_code, first.body["code"]) == (504, "gateway_timeout")

    again = await rig.one(command)

    assert (again.status_code, again.replayed) == (409, False)
    assert (again.body["type"], again.body["code"], again.body["param"]) == (
        "idempotency_error",
        "idempotency_key_in_use",
        "Idempotency-Key",
    )
    assert len(rig.gateway.calls) == 1
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "busy")
    assert (stored.status, stored.response_status) == ("processing", None)


async def test_repeats_inside_one_batch_share_the_first_result(rig: Rig) -> None:
    command = rig.requests.purchase(1000, key="twice")
    other_body = rig.requests.purchase(1000, key="twice")  # another inline customer
    plain = rig.requests.purchase(300)

    first, repeat, mismatch, neighbour = await rig.service.execute(
        [command, command, other_body, plain]
    )

    assert (first.status_code, first.replayed) == (200, False)
    assert (repeat.status_code, repeat.replayed, repeat.body) == (200, True, first.body)
    assert (mismatch.status_code, mismatch.body["code"]) == (422, "idempotency_key_reused")
    assert neighbour.status_code == 200
    assert neighbour.body["amount"] == 300
    assert sorted(c.amount for c in rig.gateway.calls) == [300, 1000]
    assert await checks.count_payments(rig.db, command.customer_id) == 1
    assert await checks.count_payments(rig.db, other_body.customer_id) == 0


async def test_keys_belong_to_their_api_key(rig: Rig) -> None:
    other_key = Requests(UUID(int=rig.requests.api_key_id.int ^ 1))
    mine = await rig.one(rig.requests.purchase(1000, email="x@example.com", key="shared"))
    theirs = await rig.one(other_key.purchase(1000, email="x@example.com", key="shared"))

    assert (mine.status_code, theirs.status_code, theirs.replayed) == (200, 200, False)
    assert theirs.body["id"] != mine.body["id"]
    assert len(rig.gateway.calls) == 2


async def test_without_a_key_every_request_acts(rig: Rig) -> None:
    payment = (await rig.one(rig.requests.purchase(1000))).body
    customer = UUID(payment["customer_id"])
    command = rig.requests.purchase(250, customer_id=customer)

    first = await rig.one(command)
    second = await rig.one(command)

    assert (first.replayed, second.replayed) == (False, False)
    assert first.body["id"] != second.body["id"]
    assert await checks.count_payments(rig.db, customer) == 3
    await checks.expect_ledger(rig, customer, captured=1500)


async def test_an_expired_key_is_taken_over(rig: Rig) -> None:
    first = await rig.one(rig.requests.purchase(1000, key="old"))
    async with rig.db.connection() as conn:
        await conn.execute(
            """UPDATE idempotency_keys SET expires_at = now() - interval '1 second'
               WHERE api_key_id = $1 AND idempotency_key = 'old'""",
            rig.requests.api_key_id,
        )

    reused = await rig.one(rig.requests.purchase(2000, key="old"))

    assert (reused.status_code, reused.replayed, reused.body["amount"]) == (200, False, 2000)
    assert reused.body["id"] != first.body["id"]
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "old")
    assert (stored.response_status, stored.response_body) == (200, reused.body)
    assert len(rig.gateway.calls) == 2
