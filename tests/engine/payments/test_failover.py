"""Failover between gateways and the circuit breaker on the money path, with two fake gateways
(`fake`, then `other`): a purchase whose gateway failed before acting goes to the next gateway
and records both attempts; never after an ambiguous outcome (recovery asks the gateway that may
have acted) and never for an operation; an open circuit sends new payments straight to the
next gateway, and with every circuit open a payment is refused 503 before anything is written,
its Idempotency-Key left free for the retry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from engine.db.database import Database
from engine.payments.reads import PaymentReads
from tests.engine.payments import checks
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import DROP, LOSE, TIMEOUT, FakeGateway, ManualCircuits
from tests.engine.payments.harness import Rig, engine_settings


class TwoGateways:
    def __init__(self, rig: Rig, other: FakeGateway, circuits: ManualCircuits) -> None:
        self.rig, self.other, self.circuits = rig, other, circuits

    @property
    def fake(self) -> FakeGateway:
        return self.rig.gateway

    async def attempts(self, payment_id: str) -> list[tuple[str, str, str]]:
        found = await PaymentReads(self.rig.db).get(UUID(payment_id))
        return [(a.gateway, a.kind, a.outcome) for a in found.attempts]


@pytest.fixture
async def two(database: Database, requests: Requests) -> TwoGateways:
    other = FakeGateway(name="other")
    circuits = ManualCircuits()
    settings = engine_settings().model_copy(update={"gateways": ("fake", "other")})
    rig = await Rig.build(
        database, requests, settings=settings, more_gateways=(other,), breakers=circuits.breakers
    )
    return TwoGateways(rig, other, circuits)


def _body(result: Any) -> dict[str, Any]:
    assert result.status_code == 200, result.body
    body: dict[str, Any] = result.body
    return body


async def test_a_failure_before_the_gateway_acted_fails_over_to_the_next(
    two: TwoGateways,
) -> None:
    two.fake.script(TIMEOUT)

    paid = _body(await two.rig.one(two.rig.requests.purchase(1000, key="k")))

    assert (paid["status"], paid["gateway"]) == ("succeeded", "other")
    assert (len(two.fake.calls), len(two.other.calls)) == (1, 1)
    assert await two.attempts(paid["id"]) == [
        ("fake", "charge", "error"),
        ("other", "charge", "approved"),
    ]
    row = await checks.payment_row(two.rig.db, paid["id"])
    assert (row["gateway"], row["gateway_transaction_id"]) == (
        "other",
        two.other.records[UUID(paid["id"])].gateway_transaction_id,
    )
    await checks.expect_ledger(two.rig, paid["customer_id"], captured=1000)


@pytest.mark.parametrize("act", [DROP, LOSE], ids=["acted-then-lost", "lost-on-the-way"])
async def test_an_ambiguous_outcome_never_fails_over(two: TwoGateways, act: Any) -> None:
    two.fake.script(act)

    lost = await two.rig.one(two.rig.requests.purchase(1000, key="k"))

    assert lost.status_code == 504
    assert two.other.calls == []
    payment_id = lost.body["payment_id"]
    row = await checks.payment_row(two.rig.db, payment_id)
    assert (row["status"], row["gateway"]) == ("processing", "fake")

    two.rig.clock.advance(timedelta(minutes=2))
    await two.rig.service.recover(older_than=two.rig.clock.now())

    # Recovery asked the gateway that may have acted, and charged nowhere again.
    assert two.fake.lookups == [UUID(payment_id)]
    assert (len(two.fake.calls), two.other.calls) == (1, [])
    expected = "succeeded" if act is DROP else "failed"
    assert (await checks.payment_row(two.rig.db, payment_id))["status"] == expected


async def test_an_operation_stays_at_its_payments_gateway(two: TwoGateways) -> None:
    auth = _body(await two.rig.one(two.rig.requests.authorize(1000)))
    two.fake.script(TIMEOUT)

    failed = await two.rig.one(two.rig.requests.capture(auth))

    assert failed.status_code == 502
    assert two.other.calls == []
    assert (await checks.payment_row(two.rig.db, auth["id"]))["status"] == "authorized"


async def test_an_open_circuit_sends_new_payments_to_the_next_gateway(two: TwoGateways) -> None:
    await two.circuits.open("fake")

    paid = _body(await two.rig.one(two.rig.requests.purchase(1000)))

    assert paid["gateway"] == "other"
    assert two.fake.calls == []
    assert await two.attempts(paid["id"]) == [("other", "charge", "approved")]


async def test_with_every_circuit_open_a_payment_is_refused_and_its_key_stays_free(
    two: TwoGateways,
) -> None:
    await two.circuits.open("fake")
    await two.circuits.open("other")
    command = two.rig.requests.purchase(1000, key="retry-me")

    refused = await two.rig.one(command)

    assert (refused.status_code, refused.body["code"]) == (503, "gateway_unavailable")
    assert await checks.count_payments(two.rig.db, command.customer_id) == 0
    assert (two.fake.calls, two.other.calls) == ([], [])

    # After the reset one probe goes through, closes the circuit, and the retry is charged.
    two.circuits.now += 60
    await two.circuits.sync()
    retried = await two.rig.one(command)
    assert (retried.status_code, retried.replayed) == (200, False)
    assert retried.body["status"] == "succeeded"
    await two.circuits.sync()
    assert two.circuits.board.states()["fake"] == "closed"


async def test_failures_open_the_circuit_after_five_and_declines_never(two: TwoGateways) -> None:
    r = two.rig.requests
    two.fake.declining_cards["4000000000000002"] = "generic_decline"
    for _ in range(6):
        await two.rig.one(r.purchase(1000, number="4000000000000002"))
    await two.circuits.sync()
    assert two.circuits.board.states()["fake"] == "closed"

    two.fake.script(*[TIMEOUT] * 5)
    for _ in range(5):
        assert (await two.rig.one(r.purchase(1000))).status_code == 200  # failed over
    await two.circuits.sync()

    assert two.circuits.board.states()["fake"] == "open"
    assert len(two.other.calls) == 5
