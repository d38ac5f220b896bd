"""A pipelined shard: a slow gateway call holds up only its own customer, one customer's
commands still take effect one at a time in arrival order, balance reads and recovery never wait
behind the gateway, and the money invariants hold under concurrency with a slow, uneven gateway."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from uuid import UUID

from engine.payments.commands import Command, CommandResult
from tests.engine.payments import checks
from tests.engine.payments.fakes import DROP
from tests.engine.payments.harness import Rig
from tests.waiting import wait_until

BOUND_S = 10.0


def _ok(result: CommandResult) -> dict[str, Any]:
    assert result.status_code == 200, result.body
    return result.body


async def _called(rig: Rig, amount: int) -> None:
    async def arrived() -> bool:
        return any(c.amount == amount for c in rig.gateway.calls)

    await wait_until(arrived, timeout_s=BOUND_S, what=f"a gateway call of {amount}")


async def test_a_slow_call_holds_up_only_its_own_customer(rig: Rig) -> None:
    slow = _ok(await rig.one(rig.requests.purchase(1000)))
    customer = UUID(str(slow["customer_id"]))
    release = rig.gateway.held[777] = asyncio.Event()

    first = asyncio.create_task(
        rig.service.execute([rig.requests.purchase(777, customer_id=customer)])
    )
    await _called(rig, 777)
    second = asyncio.create_task(
        rig.service.execute([rig.requests.purchase(555, customer_id=customer)])
    )

    # Other customers go through while the slow call is out, several batches of them.
    for amount in (101, 102, 103):
        [other] = await asyncio.wait_for(
            rig.service.execute([rig.requests.purchase(amount)]), BOUND_S
        )
        assert other.status_code == 200
    # The slow customer's balance is answered from what has committed, without waiting.
    balance = await asyncio.wait_for(rig.service.balances(customer), BOUND_S)
    assert balance["USD"].captured == 1000
    # Its second command waits for its first: it has not reached the gateway.
    assert 555 not in [c.amount for c in rig.gateway.calls]
    assert not second.done()

    release.set()
    [done_first], [done_second] = await asyncio.gather(first, second)
    assert (done_first.status_code, done_second.status_code) == (200, 200)
    amounts = [c.amount for c in rig.gateway.calls]
    assert amounts.index(777) < amounts.index(555)
    await checks.expect_ledger(rig, customer, captured=1000 + 777 + 555)


async def test_one_customers_commands_take_effect_in_arrival_order(rig: Rig) -> None:
    auth = _ok(await rig.one(rig.requests.authorize(1000)))
    rig.gateway.latency_s = 0.02
    capture, refund, void = await rig.service.execute(
        [
            rig.requests.capture(auth, 600),
            rig.requests.refund(auth, 600),
            rig.requests.void(auth),
        ]
    )
    # In arrival order: captured, then refunded in full, then nothing left to void.
    assert (capture.status_code, capture.body["status"]) == (200, "captured")
    assert (refund.status_code, refund.body["status"]) == (200, "refunded")
    assert (void.status_code, void.body["code"]) == (422, "payment_not_voidable")
    await checks.expect_ledger(rig, str(auth["customer_id"]), captured=600, refunded=600)


async def test_recovery_never_blocks_live_traffic(rig: Rig) -> None:
    rig.gateway.script(DROP)
    command = rig.requests.purchase(900, key="lost")
    [lost] = await rig.service.execute([command])
    assert lost.status_code == 504
    rig.clock.advance(timedelta(minutes=1))
    rig.gateway.lookup_gate = asyncio.Event()

    sweep = asyncio.create_task(rig.service.recover(older_than=rig.clock.now()))

    async def asked() -> bool:
        return bool(rig.gateway.lookups)

    await wait_until(asked, timeout_s=BOUND_S, what="recovery to ask the gateway")
    # While recovery waits on the gateway, live commands run, for any customer.
    [live] = await asyncio.wait_for(rig.service.execute([rig.requests.purchase(300)]), BOUND_S)
    assert live.status_code == 200
    [same] = await asyncio.wait_for(
        rig.service.execute([rig.requests.purchase(301, customer_id=command.customer_id)]),
        BOUND_S,
    )
    assert same.status_code == 200
    assert not sweep.done()

    rig.gateway.lookup_gate.set()
    assert await sweep == 1
    [replay] = await rig.service.execute([command])
    assert (replay.status_code, replay.replayed) == (200, True)


async def test_invariants_hold_with_many_customers_and_a_slow_gateway(rig: Rig) -> None:
    payments = [_ok(await rig.one(rig.requests.purchase(1000))) for _ in range(6)]
    auths = [_ok(await rig.one(rig.requests.authorize(1000))) for _ in range(6)]
    rig.gateway.latency_s = 0.03
    commands: list[Command] = []
    for payment in payments:
        commands += [rig.requests.refund(payment, 300) for _ in range(5)]  # 3 fit, 2 do not
    for auth in auths:
        commands += [
            rig.requests.capture(auth, 700),
            rig.requests.capture(auth),
            rig.requests.void(auth),
        ]

    # In several concurrent calls, as several replicas would send them.
    calls = [rig.service.execute(commands[i::4]) for i in range(4)]
    results = [r for batch in await asyncio.gather(*calls) for r in batch]

    assert all(r.status_code in (200, 422) for r in results), [r.body for r in results]
    for payment in payments:
        row = await checks.payment_row(rig.db, str(payment["id"]))
        assert (row["amount_refunded"], row["amount_refund_pending"]) == (900, 0)
        assert await checks.refunds(rig.db, str(payment["id"])) == [(300, "succeeded")] * 3
        await checks.expect_ledger(rig, str(payment["customer_id"]), captured=1000, refunded=900)
    for auth in auths:
        row = await checks.payment_row(rig.db, str(auth["id"]))
        settled = await checks.operations(rig.db, str(auth["id"]))
        assert len([op for op in settled if op[1] == "succeeded"]) == 1
        if row["status"] == "captured":
            captured = row["amount_captured"]
            assert captured in (700, 1000)
            await checks.expect_ledger(rig, str(auth["customer_id"]), captured=captured)
        else:
            assert row["status"] == "voided"
            await checks.expect_ledger(rig, str(auth["customer_id"]))
