"""Recovery of rows left `processing`: `PaymentService.recover(older_than=...)`.

A row is left `processing` by a gateway answer that never came back (504 `gateway_timeout`).
Recovery asks the gateway what it recorded and settles the row with that: the payment's state,
the ledger entries (once), the outbox event and the idempotency answer, so a retry under the key
gets the settled answer. A row the gateway has no record of is failed only after the gateway's
`lookup_grace_s`; nothing is ever sent to the gateway again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from engine.ledger.entries import Balance
from engine.payments.commands import Command
from engine.sharding import shard_of
from tests.engine.payments import checks
from tests.engine.payments.fakes import DROP, LOSE, Act, drop_decline
from tests.engine.payments.faults import ledger_refuses
from tests.engine.payments.harness import AUTHORIZATION_WINDOW_H, Rig

Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Left:
    """A command whose answer was lost, and what it left behind."""

    command: Command
    payment_id: UUID
    customer_id: UUID
    method: str
    before: Balance
    events_before: list[str]


async def _ok(rig: Rig, command: Command) -> Body:
    result = await rig.one(command)
    assert result.status_code == 200, result.body
    return result.body


async def leave_processing(rig: Rig, kind: str, act: Act) -> Left:
    """Run a `kind` command (under an Idempotency-Key) whose gateway call does `act`."""
    r = rig.requests
    command: Command
    if kind in ("purchase", "authorize"):
        command = (r.purchase if kind == "purchase" else r.authorize)(1000, key=f"lost-{kind}")
        before, events = Balance(), []
    elif kind == "refund":
        payment = await _ok(rig, r.purchase(1000))
        command = r.refund(payment, 400, key="lost-refund")
        before, events = Balance(captured=1000), ["payment.succeeded"]
    else:
        payment = await _ok(rig, r.authorize(1000))
        if kind == "capture":
            command = r.capture(payment, 600, key="lost-capture")
        else:
            command = r.void(payment, key="lost-void")
        before, events = Balance(held=1000), ["payment.authorized"]
    rig.gateway.script(act)

    result = await rig.one(command)

    assert result.status_code == 504
    assert (result.body["type"], result.body["code"]) == ("api_error", "gateway_timeout")
    payment_id = UUID(result.body["payment_id"])
    return Left(command, payment_id, command.customer_id, kind, before, events)


def _reference(rig: Rig, left: Left) -> UUID:
    [reference] = rig.gateway.references(left.method)
    return reference


async def _row_status(rig: Rig, reference: UUID) -> str:
    async with rig.db.connection() as conn:
        status: str = await conn.fetchval(
            "SELECT status FROM transactions WHERE id = $1", reference
        )
    return status


KINDS = ["purchase", "authorize", "capture", "void", "refund"]


@dataclass(frozen=True, slots=True)
class Settled:
    status: str
    balance: Balance
    event: str | None
    operations: list[tuple[str, str, int]]


APPROVED = {
    "purchase": Settled("succeeded", Balance(captured=1000), "payment.succeeded", []),
    "authorize": Settled("authorized", Balance(held=1000), "payment.authorized", []),
    "capture": Settled(
        "captured", Balance(captured=600), "payment.captured", [("capture", "succeeded", 600)]
    ),
    "void": Settled("voided", Balance(), "payment.voided", [("void", "succeeded", 1000)]),
    "refund": Settled(
        "succeeded",
        Balance(captured=1000, refunded=400),
        "payment.refunded",
        [("refund", "succeeded", 400)],
    ),
}

NEVER_SEEN = {
    "purchase": Settled("failed", Balance(), "payment.failed", []),
    "authorize": Settled("failed", Balance(), "payment.failed", []),
    "capture": Settled("authorized", Balance(held=1000), None, [("capture", "failed", 600)]),
    "void": Settled("authorized", Balance(held=1000), None, [("void", "failed", 1000)]),
    "refund": Settled("succeeded", Balance(captured=1000), None, [("refund", "failed", 400)]),
}


async def expect_balance(rig: Rig, customer_id: UUID, balance: Balance) -> None:
    await checks.expect_ledger(
        rig, customer_id, held=balance.held, captured=balance.captured, refunded=balance.refunded
    )


@pytest.mark.parametrize("kind", KINDS)
async def test_an_answer_lost_after_the_gateway_acted_is_settled(rig: Rig, kind: str) -> None:
    left = await leave_processing(rig, kind, DROP)
    reference = _reference(rig, left)
    key = left.command.ctx.idempotency_key
    assert key is not None

    # Until recovery: the row waits, the key answers 409, nothing is booked.
    assert await _row_status(rig, reference) == "processing"
    assert (await checks.stored_answer(rig.db, rig.requests.api_key_id, key)).status == (
        "processing"
    )
    assert (await rig.one(left.command)).status_code == 409
    await expect_balance(rig, left.customer_id, left.before)
    assert await checks.event_types(rig.db, left.payment_id) == left.events_before
    if kind == "refund":
        row = await checks.payment_row(rig.db, left.payment_id)
        assert row["amount_refund_pending"] == 400

    rig.clock.advance(timedelta(minutes=1))
    assert await rig.service.recover(older_than=rig.clock.now()) == 1

    settled = APPROVED[kind]
    row = await checks.payment_row(rig.db, left.payment_id)
    assert (row["status"], row["amount_refund_pending"]) == (settled.status, 0)
    assert await _row_status(rig, reference) == (
        settled.status if reference == left.payment_id else "succeeded"
    )
    assert await checks.operations(rig.db, left.payment_id) == settled.operations
    assert await checks.event_types(rig.db, left.payment_id) == [
        *left.events_before,
        *([settled.event] if settled.event else []),
    ]
    if kind == "refund":
        assert await checks.refunds(rig.db, left.payment_id) == [(400, "succeeded")]
    if kind == "authorize":
        assert row["authorization_expires_at"] == rig.clock.now() + timedelta(
            hours=AUTHORIZATION_WINDOW_H
        )
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, key)
    assert (stored.status, stored.response_status) == ("completed", 200)
    assert stored.response_body is not None
    assert (stored.response_body["id"], stored.response_body["status"]) == (
        str(left.payment_id),
        settled.status,
    )
    await expect_balance(rig, left.customer_id, settled.balance)

    retried = await rig.one(left.command)
    assert (retried.status_code, retried.replayed, retried.body) == (
        200,
        True,
        stored.response_body,
    )

    # Settled once: another sweep finds nothing and books nothing; nothing was sent twice.
    entries = await checks.ledger_entries(rig.db, left.customer_id)
    rig.clock.advance(timedelta(minutes=1))
    assert await rig.service.recover(older_than=rig.clock.now()) == 0
    assert await checks.ledger_entries(rig.db, left.customer_id) == entries
    assert rig.gateway.references(left.method) == [reference]
    assert rig.gateway.lookups == [reference]
    await expect_balance(rig, left.customer_id, settled.balance)


async def test_a_decline_whose_answer_was_lost_fails_the_payment(rig: Rig) -> None:
    left = await leave_processing(rig, "purchase", drop_decline("stolen_card"))
    rig.clock.advance(timedelta(minutes=1))

    assert await rig.service.recover(older_than=rig.clock.now()) == 1

    row = await checks.payment_row(rig.db, left.payment_id)
    assert (row["status"], row["failure_code"], row["decline_code"]) == (
        "failed",
        "card_declined",
        "stolen_card",
    )
    assert await checks.event_types(rig.db, left.payment_id) == ["payment.failed"]
    replay = await rig.one(left.command)
    assert (replay.status_code, replay.replayed, replay.body["decline_code"]) == (
        402,
        True,
        "stolen_card",
    )
    await checks.expect_ledger(rig, left.customer_id)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_call_the_gateway_never_saw_fails_only_after_the_grace(rig: Rig, kind: str) -> None:
    left = await leave_processing(rig, kind, LOSE)
    reference = _reference(rig, left)
    assert rig.gateway.lookup_grace_s == 60.0

    rig.clock.advance(timedelta(seconds=30))
    assert await rig.service.recover(older_than=rig.clock.now()) == 0
    assert await _row_status(rig, reference) == "processing"
    assert rig.gateway.lookups == [reference]

    rig.clock.advance(timedelta(seconds=31))
    assert await rig.service.recover(older_than=rig.clock.now()) == 1

    settled = NEVER_SEEN[kind]
    row = await checks.payment_row(rig.db, left.payment_id)
    assert (row["status"], row["amount_refund_pending"]) == (settled.status, 0)
    assert await checks.operations(rig.db, left.payment_id) == settled.operations
    assert await checks.event_types(rig.db, left.payment_id) == [
        *left.events_before,
        *([settled.event] if settled.event else []),
    ]
    if reference == left.payment_id:
        assert row["failure_code"] == "gateway_error"
    if kind == "refund":
        assert await checks.refunds(rig.db, left.payment_id) == [(400, "failed")]
    await expect_balance(rig, left.customer_id, settled.balance)
    # Never sent again by recovery: the one lost call, two lookups.
    assert rig.gateway.references(left.method) == [reference]
    assert rig.gateway.lookups == [reference, reference]
    # The client was told to retry with its key, and nothing was charged: the key is free,
    # and the retry runs afresh, once.
    key = left.command.ctx.idempotency_key
    assert key is not None
    assert await checks.stored_answers(rig.db, rig.requests.api_key_id, key) == 0
    retry = await rig.one(left.command)
    assert (retry.status_code, retry.replayed) == (200, False)
    assert len(rig.gateway.references(left.method)) == 2
    assert (await rig.one(left.command)).replayed


async def test_recent_rows_and_other_shards_are_left_alone(rig: Rig) -> None:
    left = await leave_processing(rig, "purchase", DROP)
    # Of two shards, the one that does not hold the row's slot.
    other = await Rig.build(
        rig.db,
        rig.requests,
        shard=1 - shard_of(left.customer_id, 2),
        shards=2,
        gateway=rig.gateway,
        clock=rig.clock,
    )

    # The row is younger than `older_than` on this shard; on the other it is not its row.
    assert await rig.service.recover(older_than=rig.clock.now()) == 0
    rig.clock.advance(timedelta(minutes=1))
    assert await other.service.recover(older_than=rig.clock.now()) == 0

    assert rig.gateway.lookups == []
    assert (await checks.payment_row(rig.db, left.payment_id))["status"] == "processing"


async def test_a_restarted_shard_settles_what_its_predecessor_left(rig: Rig) -> None:
    left = await leave_processing(rig, "authorize", DROP)
    restarted = await rig.restarted()
    rig.clock.advance(timedelta(minutes=1))

    assert await restarted.service.recover(older_than=rig.clock.now()) == 1

    assert (await checks.payment_row(rig.db, left.payment_id))["status"] == "authorized"
    await checks.expect_ledger(restarted, left.customer_id, held=1000)


@pytest.mark.parametrize("trouble", ["lookup", "finalize"])
async def test_one_row_that_cannot_be_settled_does_not_block_the_others(
    rig: Rig, caplog: pytest.LogCaptureFixture, trouble: str
) -> None:
    rig.gateway.script(DROP, DROP)
    stuck_command = rig.requests.purchase(1000, key="stuck")
    other_command = rig.requests.purchase(2000, key="other")
    stuck, other = await rig.service.execute([stuck_command, other_command])
    assert (stuck.status_code, other.status_code) == (504, 504)
    stuck_id = UUID(stuck.body["payment_id"])
    other_id = UUID(other.body["payment_id"])
    rig.clock.advance(timedelta(minutes=1))

    with caplog.at_level(logging.ERROR, logger="paygrid.payments"):
        if trouble == "lookup":
            rig.gateway.failing_lookups.add(stuck_id)
            assert await rig.service.recover(older_than=rig.clock.now()) == 1
            rig.gateway.failing_lookups.clear()
        else:
            async with ledger_refuses(rig.db, stuck_command.customer_id):
                assert await rig.service.recover(older_than=rig.clock.now()) == 1

    assert [r.getMessage() for r in caplog.records] == [
        f"could not settle {stuck_id}; the next sweep retries"
    ]
    assert (await checks.payment_row(rig.db, stuck_id))["status"] == "processing"
    assert (await checks.payment_row(rig.db, other_id))["status"] == "succeeded"
    assert (await checks.stored_answer(rig.db, rig.requests.api_key_id, "stuck")).status == (
        "processing"
    )
    await checks.expect_ledger(rig, stuck_command.customer_id)
    await checks.expect_ledger(rig, other_command.customer_id, captured=2000)

    assert await rig.service.recover(older_than=rig.clock.now()) == 1

    assert (await checks.payment_row(rig.db, stuck_id))["status"] == "succeeded"
    await checks.expect_ledger(rig, stuck_command.customer_id, captured=1000)
    assert sorted(c.amount for c in rig.gateway.calls) == [1000, 2000]
