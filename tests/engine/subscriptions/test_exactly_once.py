"""No period charged twice or skipped: a run that dies after the charge (before settling it)
is taken up by the next run, which replays the shard's answer under the same key; a charge
whose gateway answer was lost is settled from the payment once the shard's recovery has
settled it; two schedulers running the same due subscriptions at once charge each period
once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from engine.db.database import Database
from engine.errors import UpstreamError
from engine.payments.commands import Command, CommandResult, RefundPayment, RequestContext
from tests.engine.payments.fakes import DROP, FakeGateway
from tests.engine.subscriptions.harness import build

START = datetime(2027, 1, 31, tzinfo=UTC)
LATER = datetime(2027, 6, 1, tzinfo=UTC)
# Period starts from Jan 31 to May 31: five invoices each.
PERIODS = 5


class Crash(Exception):
    """The scheduler dying after the shard charged and before the run settled it."""


async def _periods(db: Database) -> list[tuple[UUID, int, int]]:
    async with db.connection() as conn:
        rows = await conn.fetch(
            """SELECT subscription_id, count(*) AS n,
                      count(*) FILTER (WHERE status = 'paid') AS paid
               FROM invoices GROUP BY subscription_id"""
        )
    return [(r["subscription_id"], r["n"], r["paid"]) for r in rows]


@pytest.fixture
async def gateway() -> FakeGateway:
    return FakeGateway()


async def test_a_run_killed_mid_renewal_is_finished_by_the_next(
    database: Database, gateway: FakeGateway
) -> None:
    billed = await build(database, gateway=gateway)
    _, [sub_id] = await billed.on_clock(1, START, LATER)
    crashes = 0

    async def charge_then_crash(command: Command) -> CommandResult:
        nonlocal crashes
        await billed.execute(command)
        crashes += 1
        raise Crash

    dying = billed.scheduler(charge_then_crash)
    with pytest.raises(Crash):
        await dying.run(sub_id)
    assert crashes == 1
    # The renewal's invoice exists with its attempt pending; the next run settles it.
    await billed.billing.run(sub_id)
    assert await _periods(database) == [(sub_id, PERIODS, PERIODS)]
    assert len(gateway.calls_to("purchase")) == PERIODS


async def test_a_lost_gateway_answer_is_settled_after_recovery(
    database: Database, gateway: FakeGateway
) -> None:
    billed = await build(database, gateway=gateway)
    _, [sub_id] = await billed.on_clock(1, START, LATER)
    # The Feb 28 renewal's charge is approved, and its answer lost on the way back.
    gateway.script(DROP)
    with pytest.raises(UpstreamError):
        await billed.billing.run(sub_id)
    # Until the shard's recovery settles the payment, a rerun leaves the attempt pending.
    with pytest.raises(UpstreamError):
        await billed.billing.run(sub_id)
    billed.wall.advance(timedelta(minutes=2))
    assert await billed.shard.recover(older_than=billed.wall.now()) == 1
    await billed.billing.run(sub_id)
    assert await _periods(database) == [(sub_id, PERIODS, PERIODS)]
    assert len(gateway.calls_to("purchase")) == PERIODS


async def test_two_schedulers_at_once(database: Database, gateway: FakeGateway) -> None:
    billed = await build(database, gateway=gateway)
    clock, subs = await billed.on_clock(20, START, LATER)
    other = billed.scheduler(billed.execute)
    await asyncio.gather(
        billed.billing.run_due(clock.id, LATER),
        other.run_due(clock.id, LATER),
        *(other.run(s) for s in subs),
    )
    assert sorted(await _periods(database)) == sorted((s, PERIODS, PERIODS) for s in subs)
    assert len(gateway.calls_to("purchase")) == PERIODS * len(subs)
    async with database.connection() as conn:
        paid_events = await conn.fetchval(
            "SELECT count(*) FROM events WHERE event_type = 'invoice.paid'"
        )
    assert paid_events == PERIODS * len(subs)


async def test_a_pending_attempt_past_its_keys_lifetime_is_not_charged_again(
    database: Database, gateway: FakeGateway
) -> None:
    # The renewal is charged, the run dies before settling it, and the attempt stays pending
    # longer than the idempotency key lives (a paused scheduler queue over a weekend).
    billed = await build(database, gateway=gateway)
    _, [sub_id] = await billed.on_clock(1, START, LATER)

    async def charge_then_crash(command: Command) -> CommandResult:
        await billed.execute(command)
        raise Crash

    with pytest.raises(Crash):
        await billed.scheduler(charge_then_crash).run(sub_id)
    async with database.connection() as conn:
        await conn.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 hour'")
    await billed.billing.run(sub_id)
    assert await _periods(database) == [(sub_id, PERIODS, PERIODS)]
    assert len(gateway.calls_to("purchase")) == PERIODS


async def test_the_shard_refuses_a_second_payment_with_an_attempts_id(
    database: Database, gateway: FakeGateway
) -> None:
    # Even past the lookup (two runs racing after the key expired), the shard refuses a
    # payment whose id an invoice attempt's payment already has.
    billed = await build(database, gateway=gateway)
    _, [sub_id] = await billed.on_clock(1, START, LATER)
    commands: list[Command] = []

    async def keep(command: Command) -> CommandResult:
        commands.append(command)
        return await billed.execute(command)

    await billed.scheduler(keep).run(sub_id)
    async with database.connection() as conn:
        await conn.execute("DELETE FROM idempotency_keys")
    again = await billed.execute(commands[0])
    assert again.status_code == 409
    assert again.body["code"] == "payment_exists"
    assert len(gateway.calls_to("purchase")) == PERIODS


async def test_a_pending_attempt_whose_payment_was_refunded_meanwhile_settles(
    database: Database, gateway: FakeGateway
) -> None:
    billed = await build(database, gateway=gateway)
    _, [sub_id] = await billed.on_clock(1, START, LATER)
    charged: list[CommandResult] = []

    async def charge_then_crash(command: Command) -> CommandResult:
        charged.append(await billed.execute(command))
        raise Crash

    with pytest.raises(Crash):
        await billed.scheduler(charge_then_crash).run(sub_id)
    payment = UUID(charged[0].body["id"])
    refund = RefundPayment(
        RequestContext(billed.api_key, "merchant"),
        payment,
        UUID(charged[0].body["customer_id"]),
    )
    assert (await billed.execute(refund)).status_code == 200
    async with database.connection() as conn:
        await conn.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 hour'")
    await billed.billing.run(sub_id)
    assert await _periods(database) == [(sub_id, PERIODS, PERIODS)]
    assert len(gateway.calls_to("purchase")) == PERIODS
