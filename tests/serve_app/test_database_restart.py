"""PostgreSQL crashes and recovers (an immediate-mode restart) while purchases flow: nobody gets
a 500, every refused request is a retryable 503, every request retried with its Idempotency-Key
succeeds exactly once, and paygrid serves again without being restarted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg

from engine.config import Settings
from tests.factories import Api
from tests.purchase_load import PurchaseLoad

CLIENTS = 12


async def test_a_database_restart_answers_503_and_loses_nothing(
    api: Api, db: asyncpg.Pool, cluster: Settings, restart_database: Callable[[], None]
) -> None:
    customers = [str((await api.purchase(amount=100))["customer_id"]) for _ in range(6)]
    load = PurchaseLoad(api, customers, "restart")
    load.start(CLIENTS)
    await load.until_succeeded(40, timeout_s=30, what="purchases flowing before the restart")
    before = load.succeeded()
    await asyncio.to_thread(restart_database)
    await load.until_succeeded(before + 40, timeout_s=60, what="serving after the restart")
    await load.stop()

    statuses = [s.status for s in load.sent]
    refused = [s for s in load.sent if s.status != 200]
    assert 500 not in statuses
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert refused, "no request met the outage: the restart was not exercised"
    for sent in refused:
        assert sent.response is not None
        assert sent.response.json()["error"]["code"] == "database_unavailable", sent.response.text
        assert sent.response.headers["Retry-After"] == "1"
        final = await load.final_answer(sent)
        assert final.status_code == 200, final.text

    keys = [s.key for s in load.sent]
    rows = await db.fetch(
        """SELECT i.idempotency_key, t.status, count(*) OVER (PARTITION BY i.idempotency_key) AS n
           FROM idempotency_keys i JOIN transactions t ON t.id = i.resource_id
           WHERE i.idempotency_key = ANY($1::text[])""",
        keys,
    )
    assert len(rows) == len(keys), "a request answered 200 has no payment, or one has two"
    assert {r["n"] for r in rows} == {1}
    assert {r["status"] for r in rows} == {"succeeded"}

    # The ledger agrees with the payments of these customers, and the API serves reads.
    for customer in customers:
        ledger = (await api.get(f"/api/customers/{customer}/ledger")).json()["data"]
        captured = await db.fetchval(
            """SELECT sum(amount_captured) FROM transactions
               WHERE customer_id = $1::uuid AND parent_id IS NULL""",
            customer,
        )
        assert ledger["balances"][0]["captured"] == captured
