"""AML screening in the shard's batch path, against the real database: each rule fires on its
pattern (flagging lets the payment through with an alert; blocking declines it 402
`compliance_block`, records the failed payment without a gateway call, and writes the alert and
its event), also across a shard restart, and stays silent on ordinary traffic."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from engine.compliance.monitor import AmlMonitor
from engine.db.database import Database
from engine.payments.commands import CommandResult
from engine.sharding import slots_of
from schema.states import RuleAction
from tests.engine.compliance.conftest import RigFactory
from tests.engine.payments import checks
from tests.engine.payments.builders import MASTERCARD, VISA
from tests.engine.payments.harness import Rig

Body = dict[str, Any]
CARDS = [VISA, MASTERCARD, "4000056655665556", "5200828282828210", "378282246310005"]


async def ok(rig: Rig, command: Any) -> Body:
    result = await rig.one(command)
    assert result.status_code == 200, result.body
    return result.body


async def alerts(db: Database, customer_id: UUID | str | None = None) -> list[asyncpg.Record]:
    async with db.connection() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            """SELECT rule, action, status, payment_id, details, customer_id
               FROM compliance_alerts WHERE $1::uuid IS NULL OR customer_id = $1
               ORDER BY created_at, id""",
            None if customer_id is None else UUID(str(customer_id)),
        )
    return rows


def assert_blocked(result: CommandResult) -> str:
    assert result.status_code == 402, result.body
    assert result.body["decline_code"] == "compliance_block"
    payment_id: str = result.body["payment_id"]
    return payment_id


async def test_velocity_by_count_blocks_the_payment_over_the_limit(make_rig: RigFactory) -> None:
    rig = await make_rig(velocity_max_count=3, velocity_action=RuleAction.BLOCK)
    first = await ok(rig, rig.requests.purchase(1000))
    customer = UUID(first["customer_id"])
    for _ in range(2):
        await ok(rig, rig.requests.purchase(1000, customer_id=customer))
    calls = len(rig.gateway.calls)

    blocked = await rig.one(rig.requests.purchase(1000, customer_id=customer, key="k-block"))

    payment_id = assert_blocked(blocked)
    assert len(rig.gateway.calls) == calls  # no gateway call for a blocked payment
    row = await checks.payment_row(rig.db, payment_id)
    assert (row["status"], row["decline_code"], row["amount_captured"]) == (
        "failed",
        "compliance_block",
        0,
    )
    [alert] = await alerts(rig.db, customer)
    assert (alert["rule"], alert["action"], alert["status"]) == ("velocity", "block", "open")
    assert str(alert["payment_id"]) == payment_id
    assert alert["details"]["count"] == 4
    assert await checks.event_types(rig.db, payment_id) == ["payment.failed"]
    assert await _alert_events(rig.db, customer) == 1
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "k-block")
    assert stored.response_status == 402
    # The repeat is answered from the key, and writes no second alert.
    again = await rig.one(rig.requests.purchase(1000, customer_id=customer, key="k-block"))
    assert (again.status_code, again.replayed) == (402, True)
    assert len(await alerts(rig.db, customer)) == 1
    await checks.expect_ledger(rig, customer, captured=3000)

    rig.clock.advance(timedelta(hours=1, seconds=1))
    await ok(rig, rig.requests.purchase(1000, customer_id=customer))


async def test_a_restarted_shard_remembers_the_window_before_it(make_rig: RigFactory) -> None:
    """The history is warmed from the database when the shard starts: a pattern straddling a
    restart is still seen. Blocked payments are not remembered, nor anything older than the
    longest window."""
    rig = await make_rig(velocity_max_count=3, velocity_action=RuleAction.BLOCK)
    first = await ok(rig, rig.requests.purchase(1000))
    customer = UUID(first["customer_id"])
    for _ in range(2):
        await ok(rig, rig.requests.purchase(1000, customer_id=customer))

    restarted = await rig.restarted()
    assert_blocked(await restarted.one(restarted.requests.purchase(1000, customer_id=customer)))

    monitor = AmlMonitor.from_settings(rig.settings)
    slots = slots_of(rig.shard, rig.shards)
    async with rig.db.connection() as conn:
        assert await monitor.warm(conn, slots=slots, now=rig.clock.now()) == 3
        later = rig.clock.now() + monitor.policy.memory + timedelta(seconds=5)
        assert await monitor.warm(conn, slots=slots, now=later) == 0


async def test_velocity_by_amount_flags_and_lets_the_payment_through(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(velocity_max_amount=100, velocity_action=RuleAction.FLAG)
    first = await ok(rig, rig.requests.purchase(6000))
    customer = first["customer_id"]
    assert await alerts(rig.db, customer) == []
    second = await ok(rig, rig.requests.purchase(6000, customer_id=UUID(customer)))
    assert second["status"] == "succeeded"
    [alert] = await alerts(rig.db, customer)
    assert (alert["rule"], alert["action"]) == ("velocity", "flag")
    assert (alert["details"]["amount"], alert["details"]["max_amount"]) == (12000, 10000)
    assert str(alert["payment_id"]) == second["id"]
    assert await checks.event_types(rig.db, second["id"]) == ["payment.succeeded"]


async def test_a_large_amount_is_flagged_in_the_currencys_major_unit(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig()
    # 10,000.00 USD, 10,000 JPY and 10,000.000 KWD hit; just below them does not.
    hits = [(1_000_000, "USD"), (10_000, "JPY"), (10_000_000, "KWD")]
    misses = [(999_999, "USD"), (9_999, "JPY"), (9_999_999, "KWD")]
    flagged = [await ok(rig, rig.requests.purchase(a, c)) for a, c in hits]
    for amount, currency in misses:
        await ok(rig, rig.requests.purchase(amount, currency))
    found = await alerts(rig.db)
    assert sorted(str(a["payment_id"]) for a in found) == sorted(p["id"] for p in flagged)
    assert {(a["rule"], a["action"]) for a in found} == {("large_amount", "flag")}
    assert all(p["status"] == "succeeded" for p in flagged)
    by_currency = {a["details"]["currency"]: a["details"]["threshold"] for a in found}
    assert by_currency == {"USD": 1_000_000, "JPY": 10_000, "KWD": 10_000_000}
    # An authorization is screened as a purchase is.
    authorized = await ok(rig, rig.requests.authorize(1_000_000, "JPY"))
    assert authorized["status"] == "authorized"
    assert len(await alerts(rig.db)) == 4


async def test_structuring_flags_the_third_payment_just_under_the_threshold(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig()
    first = await ok(rig, rig.requests.purchase(950_000))
    customer = UUID(first["customer_id"])
    rig.clock.advance(timedelta(hours=10))
    await ok(rig, rig.requests.purchase(990_000, customer_id=customer))
    assert await alerts(rig.db, customer) == []
    rig.clock.advance(timedelta(hours=10))
    third = await ok(rig, rig.requests.purchase(999_999, customer_id=customer))
    [alert] = await alerts(rig.db, customer)
    assert (alert["rule"], str(alert["payment_id"])) == ("structuring", third["id"])
    assert (alert["details"]["count"], alert["details"]["total"]) == (3, 2_939_999)

    # Spread over more than 24 h, or not just under, it is not structuring.
    other = await ok(rig, rig.requests.purchase(950_000))
    other_customer = UUID(other["customer_id"])
    for amount in (950_000, 500_000):
        rig.clock.advance(timedelta(hours=13))
        await ok(rig, rig.requests.purchase(amount, customer_id=other_customer))
    assert await alerts(rig.db, other_customer) == []


async def test_a_refund_soon_after_the_purchase_is_flagged(make_rig: RigFactory) -> None:
    rig = await make_rig()
    paid = await ok(rig, rig.requests.purchase(5000))
    refunded = await ok(rig, rig.requests.refund(paid, 2000))
    assert refunded["amount_refunded"] == 2000
    [alert] = await alerts(rig.db, paid["customer_id"])
    assert (alert["rule"], alert["action"], str(alert["payment_id"])) == (
        "refund_after_purchase",
        "flag",
        paid["id"],
    )
    assert alert["details"]["amount"] == 2000
    # A refund refused for its own reasons is not screened.
    too_much = await rig.one(rig.requests.refund(paid, 9000))
    assert too_much.status_code == 422
    assert len(await alerts(rig.db, paid["customer_id"])) == 1

    later = await ok(rig, rig.requests.purchase(5000))
    rig.clock.advance(timedelta(hours=2))
    await ok(rig, rig.requests.refund(later))
    assert await alerts(rig.db, later["customer_id"]) == []


async def test_a_blocking_refund_rule_refuses_the_refund(make_rig: RigFactory) -> None:
    rig = await make_rig(refund_action=RuleAction.BLOCK)
    paid = await ok(rig, rig.requests.purchase(5000))
    refused = await rig.one(rig.requests.refund(paid, key="refund-1"))
    assert refused.status_code == 402
    assert refused.body["decline_code"] == "compliance_block"
    assert rig.gateway.calls_to("refund") == []
    row = await checks.payment_row(rig.db, paid["id"])
    assert (row["status"], row["amount_refunded"], row["amount_refund_pending"]) == (
        "succeeded",
        0,
        0,
    )
    assert await checks.refunds(rig.db, paid["id"]) == []
    [alert] = await alerts(rig.db, paid["customer_id"])
    assert (alert["rule"], alert["action"]) == ("refund_after_purchase", "block")
    stored = await checks.stored_answer(rig.db, rig.requests.api_key_id, "refund-1")
    assert stored.response_status == 402


async def test_many_distinct_cards_block_a_new_card_not_the_known_ones(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(cards_max=2)
    first = await ok(rig, rig.requests.purchase(1000, number=CARDS[0]))
    customer = UUID(first["customer_id"])
    await ok(rig, rig.requests.purchase(1000, customer_id=customer, number=CARDS[1]))
    blocked = await rig.one(rig.requests.purchase(1000, customer_id=customer, number=CARDS[2]))
    payment_id = assert_blocked(blocked)
    [alert] = await alerts(rig.db, customer)
    assert (alert["rule"], alert["action"]) == ("distinct_cards", "block")
    assert alert["details"] == {"distinct_cards": 3, "max_cards": 2, "window_s": 86400}
    row = await checks.payment_row(rig.db, payment_id)
    assert (row["status"], row["payment_method"]["last4"]) == ("failed", CARDS[2][-4:])
    # Nothing of a card in the alert or its event.
    assert await _card_digits_in_alert_rows(rig.db, CARDS[2]) is False
    await ok(rig, rig.requests.purchase(1000, customer_id=customer, number=CARDS[0]))


async def test_rules_off_write_nothing(make_rig: RigFactory) -> None:
    rig = await make_rig(enabled=False)
    await ok(rig, rig.requests.purchase(5_000_000))
    off = await make_rig(large_amount_action=RuleAction.OFF)
    await ok(off, off.requests.purchase(5_000_000))
    assert await alerts(rig.db) == []


async def test_ordinary_traffic_raises_no_alert(make_rig: RigFactory) -> None:
    """Three hundred varied purchases and authorizations across sixty customers, in batches,
    with captures and late refunds among them: not one alert."""
    rig = await make_rig()
    rng = random.Random(9)
    customers: list[UUID] = []
    for _ in range(60):
        paid = await ok(rig, rig.requests.purchase(rng.randint(100, 20_000)))
        customers.append(UUID(paid["customer_id"]))
    wallets = {c: rng.sample(CARDS, rng.randint(1, 2)) for c in customers}
    payments: list[Body] = []
    for _ in range(5):
        batch = []
        for customer in customers:
            currency = rng.choice(["USD", "EUR", "GBP", "JPY"])
            amount = rng.randint(50, 9_000) if currency == "JPY" else rng.randint(100, 250_000)
            build = rig.requests.purchase if rng.random() < 0.8 else rig.requests.authorize
            batch.append(
                build(amount, currency, customer_id=customer, number=rng.choice(wallets[customer]))
            )
        results = await rig.service.execute(batch)
        assert all(r.status_code == 200 for r in results), [r.body for r in results]
        payments += [r.body for r in results]
        rig.clock.advance(timedelta(minutes=rng.randint(5, 90)))
    rig.clock.advance(timedelta(hours=2))
    for body in payments[:40]:
        command = (
            rig.requests.refund(body)
            if body["status"] == "succeeded"
            else rig.requests.capture(body)
        )
        await ok(rig, command)
    assert await alerts(rig.db) == []


async def _alert_events(db: Database, customer_id: UUID) -> int:
    async with db.connection() as conn:
        count: int = await conn.fetchval(
            """SELECT count(*) FROM events e JOIN compliance_alerts a ON a.id = e.object_id
               WHERE e.event_type = 'compliance.alert' AND a.customer_id = $1
                 AND e.payload->>'rule' = a.rule""",
            customer_id,
        )
    return count


async def _card_digits_in_alert_rows(db: Database, number: str) -> bool:
    async with db.connection() as conn:
        found: bool = await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM compliance_alerts a
                              WHERE a.details::text LIKE '%' || $1 || '%')
                   OR EXISTS (SELECT 1 FROM events WHERE event_type = 'compliance.alert'
                              AND payload::text LIKE '%' || $1 || '%')""",
            number,
        )
    return found
