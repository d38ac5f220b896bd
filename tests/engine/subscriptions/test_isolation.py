"""A due run is robust to one subscription's trouble: a charge the shard refuses for good is a
decline (dunning goes on) rather than asked again forever, one subscription's failure leaves
the others billed and the run (a test clock's advance) finished, and the idempotency keys of
paygrid's own charges live in a scope merchants' keys cannot enter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound
from engine.payments.commands import Command, CommandResult, CreatePayment
from engine.payments.intake import check_idempotency_key
from engine.subscriptions.states import SubscriptionStatus
from tests.engine.payments.fakes import FakeGateway
from tests.engine.subscriptions.harness import build

START = datetime(2027, 1, 10, tzinfo=UTC)
RENEWAL = datetime(2027, 2, 10, 1, tzinfo=UTC)


async def test_a_charge_refused_for_good_is_a_decline(database: Database) -> None:
    billed = await build(database, gateway=FakeGateway())
    clock, [sub_id] = await billed.on_clock(1, START, RENEWAL)

    async def refuse(command: Command) -> CommandResult:
        return CommandResult.from_error(NotFound("no customer", param="customer_id"))

    await billed.clocks.run_advance(clock.id, billed.scheduler(refuse).run_due)
    sub, latest = await billed.subscriptions.get(sub_id)
    assert sub.status is SubscriptionStatus.PAST_DUE
    assert latest is not None
    assert latest.last_decline_code == "resource_missing"
    assert not latest.attempt_pending


async def test_one_subscriptions_failure_leaves_the_others_billed(database: Database) -> None:
    billed = await build(database, gateway=FakeGateway())
    clock, subs = await billed.on_clock(3, START, RENEWAL)
    broken = subs[0]

    async def one_breaks(command: Command) -> CommandResult:
        if isinstance(command, CreatePayment) and command.metadata["subscription_id"] == str(
            broken
        ):
            raise RuntimeError("a bug in one subscription's run")
        return await billed.execute(command)

    await billed.clocks.run_advance(clock.id, billed.scheduler(one_breaks).run_due)
    got = await billed.clocks.get(clock.id)
    assert got.status == "ready"
    for sub_id in subs[1:]:
        _, latest = await billed.subscriptions.get(sub_id)
        assert latest is not None
        assert latest.period_start == datetime(2027, 2, 10, tzinfo=UTC)
        assert latest.status == "paid"


@pytest.mark.parametrize("key", ["paygrid:subscription:x", "PAYGRID:anything"])
def test_merchants_keys_cannot_enter_the_reserved_scope(key: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_idempotency_key(key)
    assert refused.value.param == "Idempotency-Key"
