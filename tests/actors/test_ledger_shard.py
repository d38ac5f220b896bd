"""A ledger shard killed in the middle of a burst loses nothing and charges nothing twice."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import ray

from actors.options import NAMESPACE
from engine.config import Settings
from engine.sharding import shard_of
from tests.factories import Api, payment_body

BURST = 160


async def _ledger_matches_payments(db: asyncpg.Pool) -> None:
    ledger = {
        r["account"]: r["total"]
        for r in await db.fetch(
            "SELECT account, sum(amount) AS total FROM ledger_entries GROUP BY account"
        )
    }
    totals = await db.fetchrow(
        """SELECT coalesce(sum(amount_captured), 0) AS captured,
                  coalesce(sum(amount_refunded), 0) AS refunded,
                  coalesce(sum(amount_capturable), 0) AS held
           FROM transactions WHERE parent_id IS NULL"""
    )
    assert ledger.get("captured", 0) == totals["captured"]
    assert ledger.get("refunded", 0) == totals["refunded"]
    assert ledger.get("held", 0) == totals["held"]


async def test_killed_shard_loses_nothing(api: Api, db: asyncpg.Pool, cluster: Settings) -> None:
    customers = [str((await api.purchase(amount=100))["customer_id"]) for _ in range(8)]
    victim = ray.get_actor("ledger-shard-0", namespace=NAMESPACE)
    keys = [f"crash-{uuid.uuid4()}" for _ in range(BURST)]
    bodies = [
        payment_body(amount=1000 + i, customer_id=customers[i % len(customers)])
        for i in range(BURST)
    ]
    gate = asyncio.Semaphore(24)
    done = 0
    quarter = asyncio.Event()

    async def send(i: int) -> httpx.Response:
        nonlocal done
        async with gate:
            response = await api.post("/api/payments/purchase", bodies[i], idempotency_key=keys[i])
            done += 1
            if done >= BURST // 4:
                quarter.set()
            return response

    first_life = await victim.incarnation.remote()
    tasks = [asyncio.create_task(send(i)) for i in range(BURST)]
    await quarter.wait()
    ray.kill(victim, no_restart=False)
    responses = await asyncio.gather(*tasks)

    assert any(shard_of(uuid.UUID(c), cluster.ledger_shards) == 0 for c in customers)
    codes = [r.status_code for r in responses]
    assert await victim.incarnation.remote() != first_life, "the shard was not restarted"
    assert set(codes) <= {200, 503}, [r.text for r in responses if r.status_code not in (200, 503)]
    # Every answered payment exists exactly once, succeeded.
    for key, response in zip(keys, responses, strict=True):
        if response.status_code == 200:
            rows = await db.fetch(
                """SELECT t.status FROM transactions t
                   JOIN idempotency_keys i ON i.resource_id = t.id
                   WHERE i.idempotency_key = $1""",
                key,
            )
            assert [r["status"] for r in rows] == ["succeeded"], key

    # The restarted shard settles what the dead one left in flight...
    for _ in range(600):
        left = await db.fetchval("SELECT count(*) FROM transactions WHERE status = 'processing'")
        if left == 0:
            break
        await asyncio.sleep(0.05)
    assert left == 0
    # ...and clients that saw an error learn the one true outcome by retrying their key.
    for i, response in enumerate(responses):
        if response.status_code != 200:
            retry = await api.post("/api/payments/purchase", bodies[i], idempotency_key=keys[i])
            assert retry.status_code in (200, 402), retry.text
    for key in keys:
        count = await db.fetchval(
            """SELECT count(*) FROM transactions t JOIN idempotency_keys i
               ON i.resource_id = t.id WHERE i.idempotency_key = $1""",
            key,
        )
        assert count <= 1
    await _ledger_matches_payments(db)
    for customer in customers:
        ledger = (await api.get(f"/api/customers/{customer}/ledger")).json()["data"]
        captured = await db.fetchval(
            "SELECT sum(amount_captured) FROM transactions WHERE customer_id = $1::uuid "
            "AND parent_id IS NULL",
            customer,
        )
        assert ledger["balances"][0]["captured"] == captured
