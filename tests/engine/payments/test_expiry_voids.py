"""An expired authorization is voided at the gateway that holds it: the expiry queues a
`payments.void_expired` job in its own transaction, and the scheduler runs it against the
payment's recorded gateway (the sandbox on Redis, the Authorize.Net adapter on its local fake).
A gateway failure leaves the job to be retried with backoff and, once its retries are spent,
dead-lettered and replayable: the void is never lost. Every try is recorded with the payment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from redis.asyncio import Redis

from engine.db.database import Database
from engine.gateways.authorizenet import open_authorizenet
from engine.gateways.base import Gateway
from engine.gateways.registry import Gateways
from engine.gateways.sandbox import SandboxGateway
from engine.payments.expiry_voids import VOID_EXPIRED, ExpiryVoids
from engine.payments.reads import PaymentReads
from engine.payments.service import PaymentService
from engine.queueing.policy import RetryPolicy
from engine.queueing.repository import QueueRepository
from engine.queueing.settings import QueueSettings
from engine.queueing.states import JobStatus
from engine.scheduler.queue import JOBS
from engine.scheduler.service import Scheduler
from tests.engine.gateways.authorizenet_fake import FakeAuthorizeNet, adapter_settings, serving
from tests.engine.payments import checks
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import FakeClock
from tests.engine.payments.harness import AUTHORIZATION_WINDOW_H, make_service
from tests.waiting import wait_until

QUICK = QueueSettings(
    poll_s=0.05,
    lease_s=60,
    max_in_flight=10,
    policy=RetryPolicy(schedule_s=(0.05, 0.1), jitter=0),
)
WINDOW = timedelta(hours=AUTHORIZATION_WINDOW_H)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAuthorizeNet]:
    async with serving() as server:
        yield server


@pytest.fixture
async def authorizenet(fake: FakeAuthorizeNet) -> AsyncIterator[Gateway]:
    gateway = await open_authorizenet(adapter_settings(fake))
    try:
        yield gateway
    finally:
        await gateway.aclose()


@pytest.fixture
def sandbox(redis: Redis) -> SandboxGateway:
    # A name of its own: the shared Redis may hold another test's outage switch for `sandbox`.
    return SandboxGateway(redis, name=f"sandbox_{uuid4().hex[:8]}")


async def _expired(
    database: Database, requests: Requests, gateway: Gateway, amount: int = 1000
) -> tuple[PaymentService, dict[str, Any]]:
    """An authorization on `gateway`, expired by the shard's sweep."""
    clock = FakeClock()
    service = (await make_service(database, gateway, clock)).service
    [result] = await service.execute([requests.authorize(amount)])
    assert result.status_code == 200, result.body
    clock.advance(WINDOW)
    assert await service.expire_authorizations() == 1
    assert (await checks.payment_row(database, result.body["id"]))["status"] == "expired"
    return service, result.body


async def _job(database: Database, payment_id: str) -> asyncpg.Record:
    async with database.connection() as conn:
        row = await conn.fetchrow(
            """SELECT id, kind, status, attempts, last_error, payload FROM scheduled_jobs
               WHERE dedupe_key = $1""",
            f"void-expired:{payment_id}",
        )
    assert row is not None
    return row


async def _run_until(
    scheduler: Scheduler, database: Database, payment_id: str, status: str
) -> asyncpg.Record:
    async def reached() -> bool:
        await scheduler.worker.pump()
        await scheduler.worker.drain()
        return bool((await _job(database, payment_id))["status"] == status)

    await wait_until(reached, what=f"the void job to be {status}", timeout_s=10)
    return await _job(database, payment_id)


def _scheduler(database: Database, *gateways: Gateway) -> Scheduler:
    return Scheduler(database, ExpiryVoids(Gateways(list(gateways))).handlers(), QUICK)


async def _attempts(database: Database, payment_id: str) -> list[tuple[str, str]]:
    attempts = (await PaymentReads(database).get(UUID(payment_id))).attempts
    return [(a.kind, a.outcome) for a in attempts]


async def test_an_expired_authorization_is_voided_at_the_sandbox(
    database: Database, requests: Requests, sandbox: SandboxGateway
) -> None:
    _, payment = await _expired(database, requests, sandbox)
    queued = await _job(database, payment["id"])
    assert (queued["kind"], queued["status"]) == (VOID_EXPIRED, "pending")
    assert queued["payload"]["gateway"] == sandbox.name
    assert queued["payload"]["gateway_transaction_id"] == payment["gateway_transaction_id"]

    done = await _run_until(_scheduler(database, sandbox), database, payment["id"], "succeeded")

    assert done["attempts"] == 1
    voided = await sandbox.lookup(UUID(done["payload"]["reference"]))
    assert voided is not None
    assert (voided.approved, voided.gateway_transaction_id) == (
        True,
        payment["gateway_transaction_id"],
    )
    assert await _attempts(database, payment["id"]) == [
        ("authorize", "approved"),
        ("void", "approved"),
    ]
    assert (await checks.payment_row(database, payment["id"]))["status"] == "expired"


async def test_an_expired_authorization_is_voided_at_authorizenet(
    database: Database, requests: Requests, fake: FakeAuthorizeNet, authorizenet: Gateway
) -> None:
    _, payment = await _expired(database, requests, authorizenet)
    auth_id = payment["gateway_transaction_id"]
    assert fake.transactions[auth_id].status == "authorizedPendingCapture"

    await _run_until(_scheduler(database, authorizenet), database, payment["id"], "succeeded")

    assert fake.voids(auth_id) == 1
    assert fake.transactions[auth_id].status == "voided"
    assert any(b'"voidTransaction"' in body and auth_id.encode() in body for body in fake.bodies)
    assert await _attempts(database, payment["id"]) == [
        ("authorize", "approved"),
        ("void", "approved"),
    ]


async def test_an_authorizenet_error_during_the_void_is_retried(
    database: Database, requests: Requests, fake: FakeAuthorizeNet, authorizenet: Gateway
) -> None:
    _, payment = await _expired(database, requests, authorizenet)
    auth_id = payment["gateway_transaction_id"]
    fake.error_next = "E00001"  # the gateway's own error: the void did not happen
    scheduler = _scheduler(database, authorizenet)

    await scheduler.worker.pump()
    await scheduler.worker.drain()
    failed = await _job(database, payment["id"])
    assert (failed["status"], failed["attempts"]) == ("pending", 1)
    assert "E00001" in failed["last_error"]
    assert fake.transactions[auth_id].status == "authorizedPendingCapture"

    done = await _run_until(scheduler, database, payment["id"], "succeeded")

    assert done["attempts"] == 2
    assert fake.voids(auth_id) == 1
    assert fake.transactions[auth_id].status == "voided"
    assert await _attempts(database, payment["id"]) == [
        ("authorize", "approved"),
        ("void", "ambiguous"),
        ("void", "approved"),
    ]


async def test_a_void_the_gateway_cannot_take_is_dead_lettered_and_replayable(
    database: Database, requests: Requests, sandbox: SandboxGateway
) -> None:
    _, payment = await _expired(database, requests, sandbox)
    await sandbox.set_outage(True)
    try:
        scheduler = _scheduler(database, sandbox)
        dead = await _run_until(scheduler, database, payment["id"], "dead")
    finally:
        await sandbox.set_outage(False)
    assert dead["attempts"] == 3  # the try and the policy's two retries
    assert "outage" in dead["last_error"]
    assert await sandbox.lookup(UUID(dead["payload"]["reference"])) is None

    # Not lost: an operator replays it once the gateway is back.
    async with database.transaction() as conn:
        replayed = await QueueRepository(JOBS).requeue(
            conn, statuses=[JobStatus.DEAD], item_id=dead["id"]
        )
    assert replayed == 1
    await _run_until(scheduler, database, payment["id"], "succeeded")
    voided = await sandbox.lookup(UUID(dead["payload"]["reference"]))
    assert voided is not None
    assert voided.approved
    assert await _attempts(database, payment["id"]) == [
        ("authorize", "approved"),
        ("void", "error"),
        ("void", "error"),
        ("void", "error"),
        ("void", "approved"),
    ]


async def test_a_declined_void_is_recorded_and_not_retried(
    database: Database, requests: Requests, sandbox: SandboxGateway
) -> None:
    # The sandbox declines a void of 91.02 (DECLINING_AMOUNTS["void"]).
    _, payment = await _expired(database, requests, sandbox, amount=9102)

    done = await _run_until(_scheduler(database, sandbox), database, payment["id"], "succeeded")

    assert done["attempts"] == 1
    assert await _attempts(database, payment["id"]) == [
        ("authorize", "approved"),
        ("void", "declined"),
    ]
