"""PostgreSQL crashes and recovers (an immediate-mode restart) while purchases flow: nobody gets
a 500, every refused request is a retryable 503, every request retried with its Idempotency-Key
succeeds exactly once, and paygrid serves again without being restarted."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from engine.config import Settings
from tests.factories import Api, payment_body
from tests.waiting import wait_until

CLIENTS = 12


@dataclass
class Load:
    """Purchases sent back to back by several clients, each with a fresh Idempotency-Key."""

    api: Api
    customers: list[str]
    sent: list[tuple[str, dict[str, Any], httpx.Response]] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def succeeded(self) -> int:
        return sum(1 for _, _, r in self.sent if r.status_code == 200)

    async def client(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            key = f"restart-{n}-{i}-{uuid.uuid4().hex[:8]}"
            body = payment_body(amount=500 + i, customer_id=self.customers[i % len(self.customers)])
            response = await self.api.post("/api/payments/purchase", body, idempotency_key=key)
            self.sent.append((key, body, response))
            i += 1


async def _final_answer(api: Api, key: str, body: dict[str, Any]) -> httpx.Response:
    """Retry with the same key until the answer is final (not 503, not 409 in progress)."""
    answer: list[httpx.Response] = []

    async def settled() -> bool:
        response = await api.post("/api/payments/purchase", body, idempotency_key=key)
        answer[:] = [response]
        return response.status_code not in (409, 503)

    await wait_until(settled, timeout_s=60, what=f"a final answer for {key}")
    return answer[0]


async def test_a_database_restart_answers_503_and_loses_nothing(
    api: Api, db: asyncpg.Pool, cluster: Settings, restart_database: Callable[[], None]
) -> None:
    customers = [str((await api.purchase(amount=100))["customer_id"]) for _ in range(6)]
    load = Load(api, customers)
    clients = [asyncio.create_task(load.client(n)) for n in range(CLIENTS)]

    async def served(count: int) -> bool:
        return load.succeeded() >= count

    await wait_until(lambda: served(40), what="purchases flowing before the restart")
    before = load.succeeded()
    await asyncio.to_thread(restart_database)
    await wait_until(lambda: served(before + 40), timeout_s=60, what="serving after the restart")
    load.stop.set()
    await asyncio.gather(*clients)

    statuses = [r.status_code for _, _, r in load.sent]
    refused = [(k, b, r) for k, b, r in load.sent if r.status_code != 200]
    assert 500 not in statuses
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert refused, "no request met the outage: the restart was not exercised"
    for _, _, response in refused:
        error = response.json()["error"]
        assert error["code"] == "database_unavailable", error
        assert response.headers["Retry-After"] == "1"

    for key, body, _ in refused:
        final = await _final_answer(api, key, body)
        assert final.status_code == 200, final.text

    keys = [k for k, _, _ in load.sent]
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
