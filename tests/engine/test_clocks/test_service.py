"""Test clocks: created ready, advanced only forward and not while advancing, the advance job
queued with the move and marking the clock ready once what became due has run; the billing
clock answers a test clock's time for its customers and real time for everyone else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound, StateError, UpstreamError
from engine.gateways.registry import builtin_registry
from engine.principal import Principal
from engine.test_clocks.clock import BillingClock

# Aliased: pytest would take names starting with Test for test classes.
from engine.test_clocks.service import ADVANCE_JOB
from engine.test_clocks.service import TestClockService as Clocks
from engine.test_clocks.states import TestClockStatus as ClockStatus
from tests.engine.rows import add_customer

WHO = Principal(uuid4(), "req-clocks")
START = datetime(2027, 1, 31, 12, tzinfo=UTC)


@pytest.fixture
def clocks(database: Database) -> Clocks:
    return Clocks(database, sandbox_only=True)


async def test_no_clock_while_a_gateway_moves_real_money(database: Database) -> None:
    live = Clocks(database, sandbox_only=False)
    with pytest.raises(StateError) as refused:
        await live.create(frozen_time=START, name="live", principal=WHO)
    assert refused.value.code == "test_clocks_unavailable"
    async with database.connection() as conn:
        assert await conn.fetchval("SELECT count(*) FROM test_clocks") == 0


def test_only_sandboxes_allow_test_clocks() -> None:
    registry = builtin_registry()
    assert registry.sandboxes_only(["sandbox", "sandbox_b"])
    assert not registry.sandboxes_only(["sandbox", "authorizenet"])
    assert not registry.sandboxes_only(["no-such-gateway"])


async def test_advance_runs_what_is_due_then_is_ready(clocks: Clocks, database: Database) -> None:
    clock = await clocks.create(frozen_time=START, name="year", principal=WHO)
    assert clock.status is ClockStatus.READY
    assert clock.public()["frozen_time"] == int(START.timestamp())
    later = START + timedelta(days=30)
    moved = await clocks.advance(clock.id, frozen_time=later, principal=WHO)
    assert (moved.status, moved.frozen_time) == (ClockStatus.ADVANCING, later)
    with pytest.raises(StateError) as busy:
        await clocks.advance(clock.id, frozen_time=later + timedelta(days=1), principal=WHO)
    assert busy.value.code == "test_clock_advancing"
    async with database.connection() as conn:
        jobs = await conn.fetch("SELECT kind, payload FROM scheduled_jobs")
    assert [(j["kind"], j["payload"]) for j in jobs] == [
        (ADVANCE_JOB, {"test_clock_id": str(clock.id)})
    ]
    ran: list[tuple[UUID, datetime]] = []

    async def run_due(clock_id: UUID, now: datetime) -> None:
        ran.append((clock_id, now))

    await clocks.run_advance(clock.id, run_due)
    await clocks.run_advance(clock.id, run_due)  # a rerun of the job finds it ready
    assert ran == [(clock.id, later)]
    assert (await clocks.get(clock.id)).status is ClockStatus.READY


async def test_an_unsettled_charge_keeps_the_clock_advancing_and_reruns(
    clocks: Clocks, database: Database
) -> None:
    clock = await clocks.create(frozen_time=START, name=None, principal=WHO)
    await clocks.advance(clock.id, frozen_time=START + timedelta(days=1), principal=WHO)

    async def unsettled(clock_id: UUID, now: datetime) -> None:
        raise UpstreamError("a charge's outcome is not known yet", code="charge_unsettled")

    await clocks.run_advance(clock.id, unsettled)
    assert (await clocks.get(clock.id)).status is ClockStatus.ADVANCING
    async with database.connection() as conn:
        pending = await conn.fetchval(
            "SELECT count(*) FROM scheduled_jobs WHERE kind = $1 AND status = 'pending'",
            ADVANCE_JOB,
        )
    assert pending == 2  # the job that ran (settled by the queue, not here) and its rerun

    async def settled(clock_id: UUID, now: datetime) -> None:
        return None

    await clocks.run_advance(clock.id, settled)
    assert (await clocks.get(clock.id)).status is ClockStatus.READY


async def test_advance_only_forward_and_unknown_clock(clocks: Clocks) -> None:
    clock = await clocks.create(frozen_time=START, name=None, principal=WHO)
    with pytest.raises(InvalidRequest) as back:
        await clocks.advance(clock.id, frozen_time=START, principal=WHO)
    assert back.value.param == "frozen_time"
    with pytest.raises(NotFound):
        await clocks.get(uuid4())
    with pytest.raises(NotFound):
        await clocks.advance(uuid4(), frozen_time=START, principal=WHO)


async def test_billing_clock_answers_the_customers_time(clocks: Clocks, database: Database) -> None:
    real = datetime(2030, 6, 1, tzinfo=UTC)
    billing = BillingClock(lambda: real)
    clock = await clocks.create(frozen_time=START, name=None, principal=WHO)
    async with database.connection() as conn:
        on_clock = await add_customer(conn)
        await conn.execute(
            "UPDATE customers SET test_clock_id = $1 WHERE id = $2", clock.id, on_clock
        )
        off_clock = await add_customer(conn)
        assert await billing.customer_now(conn, customer_id=on_clock) == START
        assert await billing.customer_now(conn, customer_id=off_clock) == real
