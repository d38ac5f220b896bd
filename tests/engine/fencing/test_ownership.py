"""Fenced slot ownership: two shards that both believe they own a customer can never both
write. A newer claim fences the older owner (a stale incarnation, a shard of an earlier shard
count): its commands answer 503 `shard_moved` and write nothing, its recovery and expiry touch
nothing, and a claim waits for the older owner's open transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from engine.db.database import Database, open_database
from engine.errors import ShardMoved
from engine.fencing.ownership import SlotOwnership
from engine.sharding import SLOTS, shard_of, slot_of, slots_of
from tests.engine.payments import checks
from tests.engine.payments.builders import Requests
from tests.engine.payments.fakes import DROP, FakeClock, FakeGateway
from tests.engine.payments.harness import Rig
from tests.waiting import wait_until


@pytest.fixture
async def db(migrated_dsn: str) -> AsyncIterator[Database]:
    opened = await open_database(migrated_dsn, min_size=1, max_size=6)
    yield opened
    await opened.close()


def test_slots_are_dealt_round_robin_and_cover_every_customer() -> None:
    for shards in (1, 2, 3, 8):
        dealt = [slots_of(i, shards) for i in range(shards)]
        assert sorted(s for slots in dealt for s in slots) == list(range(SLOTS))
    customer = uuid4()
    assert slot_of(customer) in slots_of(shard_of(customer, 3), 3)
    with pytest.raises(ValueError, match="no shard 3 of 3"):
        slots_of(3, 3)


async def test_a_stale_owner_writes_nothing(db: Database) -> None:
    requests, clock, gateway = Requests(uuid4()), FakeClock(), FakeGateway()
    old = await Rig.build(db, requests, gateway=gateway, clock=clock)
    first = await old.one(requests.purchase(1000))
    assert first.status_code == 200
    new = await Rig.build(db, requests, gateway=gateway, clock=clock)  # the same slots, again

    command = requests.purchase(500, customer_id=UUID(first.body["customer_id"]))
    [fenced] = await old.service.execute([command])

    assert (fenced.status_code, fenced.body["code"]) == (503, "shard_moved")
    assert await checks.count_payments(db, command.customer_id) == 1
    assert [c.amount for c in gateway.calls] == [1000]  # nothing was charged
    [served] = await new.service.execute([command])
    assert served.status_code == 200
    await checks.expect_ledger(new, command.customer_id, captured=1500)


async def test_a_stale_owner_neither_recovers_nor_expires(db: Database) -> None:
    requests, clock, gateway = Requests(uuid4()), FakeClock(), FakeGateway()
    old = await Rig.build(db, requests, gateway=gateway, clock=clock)
    gateway.script(DROP)
    [lost] = await old.service.execute([requests.purchase(1000, key="lost")])
    held = await old.one(requests.authorize(700))
    assert (lost.status_code, held.status_code) == (504, 200)
    new = await Rig.build(db, requests, gateway=gateway, clock=clock)
    clock.advance(timedelta(days=30))

    assert await old.service.recover(older_than=clock.now()) == 0
    with pytest.raises(ShardMoved):
        await old.service.expire_authorizations()
    lost_row = await checks.payment_row(db, lost.body["payment_id"])
    held_row = await checks.payment_row(db, held.body["id"])
    assert (lost_row["status"], held_row["status"]) == ("processing", "authorized")

    assert await new.service.recover(older_than=clock.now()) == 1
    assert await new.service.expire_authorizations() == 1


async def test_a_claim_waits_for_the_old_owners_open_transaction(
    db: Database, migrated_dsn: str
) -> None:
    old = SlotOwnership(name="ledger-shard-0", slots=[5, 6])
    await old.claim(db)
    new = SlotOwnership(name="ledger-shard-0", slots=[6, 7])
    observer = await asyncpg.connect(migrated_dsn)
    try:
        async with db.connection() as conn, old.transaction(conn, [6]):
            # Slot 6 is held until this transaction ends: the claim waits for it.
            claim = asyncio.create_task(new.claim(db))

            async def blocked() -> bool:
                waiting = await observer.fetchval(
                    """SELECT count(*) FROM pg_stat_activity
                       WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'"""
                )
                return bool(waiting)

            await wait_until(blocked, timeout_s=10, what="the claim to wait for the lock")
            assert not claim.done()
        await asyncio.wait_for(claim, 10)
    finally:
        await observer.close()

    async with db.connection() as conn:
        async with old.transaction(conn, [5]):
            pass  # never claimed by anyone else: still held
        with pytest.raises(ShardMoved):
            async with old.transaction(conn, [6]):
                pytest.fail("a lost slot must not open a transaction")
        assert old.slots == [5]
        async with new.transaction(conn, [6, 7]):
            pass


async def test_a_new_shard_count_fences_every_old_shard(db: Database) -> None:
    requests, clock, gateway = Requests(uuid4()), FakeClock(), FakeGateway()
    before = [
        await Rig.build(db, requests, shard=i, shards=2, gateway=gateway, clock=clock)
        for i in range(2)
    ]
    commands = [requests.purchase(100 + n) for n in range(12)]
    for command in commands:
        result = await before[shard_of(command.customer_id, 2)].one(command)
        assert result.status_code == 200
    after = [
        await Rig.build(db, requests, shard=i, shards=3, gateway=gateway, clock=clock)
        for i in range(3)
    ]

    for command in commands:
        again = requests.purchase(7, customer_id=command.customer_id)
        [fenced] = await before[shard_of(command.customer_id, 2)].service.execute([again])
        assert fenced.body["code"] == "shard_moved"
        [served] = await after[shard_of(command.customer_id, 3)].service.execute([again])
        assert served.status_code == 200
        owner = after[shard_of(command.customer_id, 3)]
        await checks.expect_ledger(owner, command.customer_id, captured=command.money.amount + 7)
