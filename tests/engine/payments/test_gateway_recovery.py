"""Recovery of operations and purchases left `processing` through the real gateways (the
sandbox on Redis, the Authorize.Net adapter on its local fake server), after a restart.

The shard crashes between the gateway call and the write that settles it (here: the finalize
transaction cannot commit, and the shard is then replaced by a new incarnation with a new
gateway object that remembers nothing), or the gateway's answer is lost (dropped, timed out).
Recovery asks the payment's gateway with the reference and a `LookupHint` naming the call's
kind and the transaction it acted on, and settles the row from what the gateway did: the
gateway acted exactly once (the fake counts charges, captures, voids and refunds), nothing is
sent to it again, and each event is emitted once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from redis.asyncio import Redis

from engine.db.database import Database
from engine.gateways.authorizenet import open_authorizenet
from engine.gateways.base import Gateway
from engine.gateways.retry import RetryingGateway, gateway_retry_policy
from engine.gateways.sandbox import SandboxGateway
from engine.payments.commands import Command
from engine.payments.reads import PaymentReads
from engine.payments.service import PaymentService
from tests.engine.gateways.authorizenet_fake import FakeAuthorizeNet, adapter_settings, serving
from tests.engine.payments import checks
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import FakeClock
from tests.engine.payments.faults import ledger_refuses
from tests.engine.payments.harness import engine_settings, make_service

Body = dict[str, Any]


@dataclass
class Stack:
    """A shard on one gateway, which can be restarted (a new gateway object, new service)."""

    db: Database
    clock: FakeClock
    open_gateway: Callable[[], Awaitable[Gateway]]
    current: PaymentService | None = None

    @property
    def service(self) -> PaymentService:
        """The running incarnation's service."""
        assert self.current is not None
        return self.current

    async def start(self) -> PaymentService:
        gateway = await self.open_gateway()
        self.current = (await make_service(self.db, gateway, self.clock)).service
        return self.current


@pytest.fixture
async def fake() -> AsyncIterator[FakeAuthorizeNet]:
    async with serving() as server:
        yield server


@pytest.fixture
async def opened() -> AsyncIterator[list[Any]]:
    """Gateways opened by a test, closed after it."""
    gateways: list[Any] = []
    yield gateways
    for gateway in gateways:
        close = getattr(gateway, "aclose", None)
        if close is not None:
            await close()


def authorizenet_opener(
    fake: FakeAuthorizeNet, opened: list[Any], *, timeout_s: float = 5.0
) -> Callable[[], Awaitable[Gateway]]:
    async def open_one() -> Gateway:
        gateway = await open_authorizenet(adapter_settings(fake, timeout_s=timeout_s))
        opened.append(gateway)
        return gateway

    return open_one


def sandbox_opener(redis: Redis) -> Callable[[], Awaitable[Gateway]]:
    # A name of its own: the shared Redis may hold another test's outage switch for `sandbox`.
    name = f"sandbox_{uuid4().hex[:8]}"

    async def open_one() -> Gateway:
        return SandboxGateway(redis, name=name)

    return open_one


async def _ok(service: PaymentService, command: Any) -> Body:
    [result] = await service.execute([command])
    assert result.status_code == 200, result.body
    body: Body = result.body
    return body


@dataclass(frozen=True, slots=True)
class Expected:
    status: str
    operation: tuple[str, str, int]
    event: str
    captured: int
    refunded: int = 0


EXPECTED = {
    "capture": Expected("captured", ("capture", "succeeded", 600), "payment.captured", 600),
    "void": Expected("voided", ("void", "succeeded", 1000), "payment.voided", 0),
    "refund": Expected("succeeded", ("refund", "succeeded", 400), "payment.refunded", 1000, 400),
}


@pytest.mark.parametrize("gateway", ["sandbox", "authorizenet"])
@pytest.mark.parametrize("kind", ["capture", "void", "refund"])
async def test_an_operation_left_processing_by_a_crash_is_settled_after_a_restart(
    database: Database,
    requests: Requests,
    redis: Redis,
    fake: FakeAuthorizeNet,
    opened: list[Any],
    gateway: str,
    kind: str,
) -> None:
    stack = Stack(
        database,
        FakeClock(),
        authorizenet_opener(fake, opened) if gateway == "authorizenet" else sandbox_opener(redis),
    )
    service = await stack.start()
    command: Command
    if kind == "refund":
        payment = await _ok(service, requests.purchase(1000))
        fake.settle_batch()  # Authorize.Net refunds settled transactions only
        command = requests.refund(payment, 400, key="crash-refund")
        first_event = "payment.succeeded"
    else:
        payment = await _ok(service, requests.authorize(1000))
        command = (
            requests.capture(payment, 600, key="crash-capture")
            if kind == "capture"
            else requests.void(payment, key="crash-void")
        )
        first_event = "payment.authorized"
    charge_id = payment["gateway_transaction_id"]
    expected = EXPECTED[kind]

    # The gateway acts; the write that would settle it never commits.
    async with ledger_refuses(database, UUID(payment["customer_id"])):
        [crashed] = await service.execute([command])
    assert crashed.status_code >= 500
    assert await checks.operations(database, payment["id"]) == [
        (kind, "processing", expected.operation[2])
    ]

    restarted = await stack.start()
    stack.clock.advance(timedelta(minutes=1))
    assert await restarted.recover(older_than=stack.clock.now()) == 1

    row = await checks.payment_row(database, payment["id"])
    assert row["status"] == expected.status
    assert await checks.operations(database, payment["id"]) == [expected.operation]
    assert await checks.event_types(database, payment["id"]) == [first_event, expected.event]
    await checks.expect_ledger(
        stack, payment["customer_id"], captured=expected.captured, refunded=expected.refunded
    )
    attempts = (await PaymentReads(database).get(UUID(payment["id"]))).attempts
    assert [(a.kind, a.outcome) for a in attempts] == [
        ("charge" if kind == "refund" else "authorize", "approved"),
        ("lookup", "approved"),
    ]
    if gateway == "authorizenet":
        # Acted on exactly once at the gateway.
        assert _acted(fake, charge_id) == _once(kind)

    # Settled once: the next sweep finds nothing to do, and nothing was sent again.
    stack.clock.advance(timedelta(minutes=1))
    assert await restarted.recover(older_than=stack.clock.now()) == 0
    if gateway == "authorizenet":
        assert _acted(fake, charge_id) == _once(kind)


def _acted(fake: FakeAuthorizeNet, charge_id: str) -> tuple[int, int, int]:
    """Captures, voids and refunds the fake made on the transaction `charge_id`."""
    refunds = sum(
        1
        for t in fake.transactions.values()
        if t.transaction_type == "refundTransaction" and t.ref_trans_id == charge_id
    )
    return fake.captures(charge_id), fake.voids(charge_id), refunds


def _once(kind: str) -> tuple[int, int, int]:
    return int(kind == "capture"), int(kind == "void"), int(kind == "refund")


@pytest.mark.parametrize("kind", ["capture", "void"])
async def test_an_authorizenet_capture_or_void_whose_answer_was_lost_is_settled_after_a_restart(
    database: Database, requests: Requests, fake: FakeAuthorizeNet, opened: list[Any], kind: str
) -> None:
    stack = Stack(database, FakeClock(), authorizenet_opener(fake, opened))
    service = await stack.start()
    payment = await _ok(service, requests.authorize(1000))
    auth_id = payment["gateway_transaction_id"]
    fake.drop_next = 1
    command = requests.capture(payment, 600) if kind == "capture" else requests.void(payment)
    [lost] = await service.execute([command])
    assert (lost.status_code, lost.body["code"]) == (504, "gateway_timeout")

    restarted = await stack.start()
    stack.clock.advance(timedelta(minutes=1))
    assert await restarted.recover(older_than=stack.clock.now()) == 1

    row = await checks.payment_row(database, payment["id"])
    assert row["status"] == ("captured" if kind == "capture" else "voided")
    assert _acted(fake, auth_id) == _once(kind)


async def test_an_authorizenet_capture_that_never_happened_fails_after_the_grace(
    database: Database, requests: Requests, fake: FakeAuthorizeNet, opened: list[Any]
) -> None:
    """The hint does not make a lookup see what is not there: an authorization still open
    means the capture never took effect."""
    stack = Stack(database, FakeClock(), authorizenet_opener(fake, opened))
    service = await stack.start()
    payment = await _ok(service, requests.authorize(1000))
    auth_id = payment["gateway_transaction_id"]
    fake.error_next = "E00001"  # the gateway's own error: ambiguous, and it did not act
    [lost] = await service.execute([requests.capture(payment, 600)])
    assert lost.status_code == 504

    restarted = await stack.start()
    stack.clock.advance(timedelta(seconds=61))
    assert await restarted.recover(older_than=stack.clock.now()) == 1

    row = await checks.payment_row(database, payment["id"])
    assert row["status"] == "authorized"
    assert await checks.operations(database, payment["id"]) == [("capture", "failed", 600)]
    assert fake.captures(auth_id) == 0


@pytest.mark.parametrize("fault", ["timeout", "dropped"])
async def test_an_authorizenet_purchase_approved_then_lost_is_charged_once_and_settled(
    database: Database, requests: Requests, fake: FakeAuthorizeNet, opened: list[Any], fault: str
) -> None:
    """The gateway approves and the answer never arrives (a timeout, a dropped connection):
    the payment stays `processing` with its outcome unknown (the retrying wrapper does not
    send the charge again), and recovery settles it by lookup: `succeeded`, charged once,
    its event emitted once."""
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    async def open_retrying() -> Gateway:
        adapter = await authorizenet_opener(fake, opened, timeout_s=0.5)()
        return RetryingGateway(
            adapter,
            gateway_retry_policy(engine_settings()),
            deduplicates=("capture", "void", "refund"),
            sleep=sleep,
        )

    stack = Stack(database, FakeClock(), open_retrying)
    service = await stack.start()
    if fault == "timeout":
        fake.latency_s = 1.0
    else:
        fake.drop_next = 1
    command = requests.purchase(1000, key="lost-charge")

    [lost] = await service.execute([command])

    assert (lost.status_code, lost.body["code"]) == (504, "gateway_timeout")
    fake.latency_s = 0.0
    payment_id = UUID(lost.body["payment_id"])
    assert (await checks.payment_row(database, payment_id))["status"] == "processing"
    assert fake.charges(payment_id) == 1
    assert slept == []
    attempts = (await PaymentReads(database).get(payment_id)).attempts
    assert [(a.kind, a.outcome) for a in attempts] == [("charge", "ambiguous")]
    assert await checks.event_types(database, payment_id) == []

    restarted = await stack.start()
    stack.clock.advance(timedelta(minutes=1))
    assert await restarted.recover(older_than=stack.clock.now()) == 1

    assert (await checks.payment_row(database, payment_id))["status"] == "succeeded"
    assert fake.charges(payment_id) == 1
    assert await checks.event_types(database, payment_id) == ["payment.succeeded"]
    attempts = (await PaymentReads(database).get(payment_id)).attempts
    assert [(a.kind, a.outcome) for a in attempts] == [
        ("charge", "ambiguous"),
        ("lookup", "approved"),
    ]
    await checks.expect_ledger(stack, command.customer_id, captured=1000)
    # The client's retry under its key gets the settled answer; nothing is charged again.
    [retried] = await restarted.execute([command])
    assert (retried.status_code, retried.replayed) == (200, True)
    stack.clock.advance(timedelta(minutes=1))
    assert await restarted.recover(older_than=stack.clock.now()) == 0
    assert fake.charges(payment_id) == 1
    assert await checks.event_types(database, payment_id) == ["payment.succeeded"]
