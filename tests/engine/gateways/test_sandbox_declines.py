"""The sandbox's declined captures, voids and refunds (trigger amounts in
`engine/gateways/sandbox.py`, listed in the README), through a shard's payment service on the
session's real PostgreSQL and Redis: a declined capture leaves the payment authorized with its
hold, a declined void leaves it authorized, a declined refund moves no money; each answers 402
with the decline code and is recorded as a declined attempt."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest
from redis.asyncio import Redis

from engine.db.database import Database, open_database
from engine.gateways.base import GatewayError, OperationRequest
from engine.gateways.sandbox import DECLINING_AMOUNTS, SandboxGateway
from engine.money import Money
from engine.payments.commands import Command, CommandResult
from engine.payments.reads import PaymentReads
from engine.payments.service import PaymentService
from tests.engine.payments import checks
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import FakeClock
from tests.engine.payments.harness import make_service

CAPTURE, VOID, REFUND = (DECLINING_AMOUNTS[k][0] for k in ("capture", "void", "refund"))


@dataclass(frozen=True, slots=True)
class SandboxShard:
    db: Database
    service: PaymentService
    requests: Requests

    async def one(self, command: Command) -> CommandResult:
        [result] = await self.service.execute([command])
        return result

    async def ok(self, command: Command) -> dict[str, Any]:
        result = await self.one(command)
        assert result.status_code == 200, result.body
        return result.body

    async def attempts(self, payment_id: str) -> list[tuple[str, str, str | None]]:
        found = await PaymentReads(self.db).get(UUID(payment_id))
        return [(a.kind, a.outcome, a.decline_code) for a in found.attempts]


@pytest.fixture
async def shard(redis: Redis, migrated_dsn: str) -> AsyncIterator[SandboxShard]:
    db = await open_database(migrated_dsn, min_size=1, max_size=2)
    service, _ = await make_service(db, SandboxGateway(redis), FakeClock())
    try:
        yield SandboxShard(db, service, Requests(uuid4()))
    finally:
        # What this test's calls left in the sandbox's records: every reference it was told.
        async with db.connection() as conn:
            references = await conn.fetch("SELECT reference FROM gateway_attempts")
        if references:
            await redis.delete(*(SandboxGateway(redis).record_key(r[0]) for r in references))
        await db.close()


@pytest.mark.parametrize("kind", ["capture", "void", "refund"])
async def test_only_the_trigger_amount_is_declined(redis: Redis, kind: str) -> None:
    sandbox = SandboxGateway(redis)
    amount, code, _ = DECLINING_AMOUNTS[kind]
    references = [uuid4(), uuid4()]
    call = getattr(sandbox, kind)
    try:
        declined = await call(OperationRequest(references[0], "sb_ch_x", Money(amount, "USD")))
        approved = await call(OperationRequest(references[1], "sb_ch_x", Money(amount + 1, "USD")))
        assert (declined.approved, declined.decline_code) == (False, code)
        assert approved.approved
        assert await sandbox.lookup(references[0]) == declined
    finally:
        await redis.delete(*(sandbox.record_key(r) for r in references))


async def test_a_declined_capture_leaves_the_payment_authorized(shard: SandboxShard) -> None:
    auth = await shard.ok(shard.requests.authorize(20_000))

    result = await shard.one(shard.requests.capture(auth, CAPTURE))

    assert (result.status_code, result.body["decline_code"]) == (402, "capture_declined")
    row = await checks.payment_row(shard.db, auth["id"])
    assert (row["status"], row["amount_capturable"], row["amount_captured"]) == (
        "authorized",
        20_000,
        0,
    )
    assert await checks.operations(shard.db, auth["id"]) == [("capture", "failed", CAPTURE)]
    await checks.expect_ledger(shard, auth["customer_id"], held=20_000)
    assert await shard.attempts(auth["id"]) == [
        ("authorize", "approved", None),
        ("capture", "declined", "capture_declined"),
    ]
    # Still capturable after the decline.
    assert (await shard.ok(shard.requests.capture(auth, 5_000)))["status"] == "captured"


async def test_a_declined_void_leaves_the_payment_authorized(shard: SandboxShard) -> None:
    auth = await shard.ok(shard.requests.authorize(VOID))

    result = await shard.one(shard.requests.void(auth))

    assert (result.status_code, result.body["decline_code"]) == (402, "void_declined")
    row = await checks.payment_row(shard.db, auth["id"])
    assert (row["status"], row["amount_capturable"]) == ("authorized", VOID)
    assert await checks.operations(shard.db, auth["id"]) == [("void", "failed", VOID)]
    await checks.expect_ledger(shard, auth["customer_id"], held=VOID)
    assert await checks.event_types(shard.db, auth["id"]) == ["payment.authorized"]


async def test_a_declined_refund_moves_no_money(shard: SandboxShard) -> None:
    paid = await shard.ok(shard.requests.purchase(20_000))

    result = await shard.one(shard.requests.refund(paid, REFUND))

    assert (result.status_code, result.body["decline_code"]) == (402, "refund_declined")
    row = await checks.payment_row(shard.db, paid["id"])
    assert (row["status"], row["amount_refunded"], row["amount_refund_pending"]) == (
        "succeeded",
        0,
        0,
    )
    assert await checks.refunds(shard.db, paid["id"]) == [(REFUND, "failed")]
    await checks.expect_ledger(shard, paid["customer_id"], captured=20_000)
    assert await checks.event_types(shard.db, paid["id"]) == ["payment.succeeded"]
    assert await shard.attempts(paid["id"]) == [
        ("charge", "approved", None),
        ("refund", "declined", "refund_declined"),
    ]


async def test_an_outage_fails_every_call_unambiguously_and_records_nothing(
    redis: Redis,
) -> None:
    sandbox, other = SandboxGateway(redis), SandboxGateway(redis, name="sandbox_b")
    references = [uuid4(), uuid4()]
    request = OperationRequest(references[0], "sb_ch_x", Money(100, "USD"))
    await sandbox.set_outage(True)
    try:
        with pytest.raises(GatewayError) as failed:
            await sandbox.capture(request)
        assert not failed.value.ambiguous
        assert await sandbox.lookup(references[0]) is None
        # The other sandbox is another gateway: up.
        assert (await other.capture(OperationRequest(references[1], "x", Money(1, "USD")))).approved
    finally:
        await sandbox.set_outage(False)
        await redis.delete(*(g.record_key(r) for g in (sandbox, other) for r in references))
    assert (await sandbox.capture(request)).approved
    await redis.delete(sandbox.record_key(references[0]))
