"""The job scheduler killed in the middle of a test clock's advance: Ray restarts it, the
advance job is taken over when its lease runs out, and every period of every subscription is
invoiced and charged exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import ray

from actors.options import NAMESPACE
from engine.auth.keys import ApiKeyService, Scope
from tests.factories import Api, card
from tests.serve_app.routes.test_customers import customer_body
from tests.waiting import wait_until

SUBSCRIPTIONS = 60
MONTHS = 12
JAN_31_2027 = 1_801_396_800


async def _created(api: Api, path: str, body: dict[str, Any]) -> str:
    response = await api.post(path, body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


async def _invoices(db: asyncpg.Pool, subs: list[str]) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM invoices WHERE subscription_id = ANY($1::uuid[])", subs
    )
    return count


async def test_a_scheduler_killed_mid_advance(
    http: httpx.AsyncClient, keys: ApiKeyService, db: asyncpg.Pool
) -> None:
    _, secret = await keys.create(
        name="scheduler-kill", scopes=frozenset({Scope.SUBSCRIPTIONS, Scope.CUSTOMERS})
    )
    api = Api(http, secret)
    clock = await _created(api, "/api/test-clocks", {"frozen_time": JAN_31_2027})
    plan = await _created(
        api, "/api/plans", {"amount": 1500, "currency": "EUR", "interval": "month"}
    )
    gate = asyncio.Semaphore(8)

    async def subscribe() -> str:
        async with gate:
            customer = await _created(
                api, "/api/database/customers", customer_body(test_clock=clock)
            )
            body = {"customer_id": customer, "plan_id": plan, "payment_method": card()}
            return await _created(api, "/api/subscriptions", body)

    subs = list(await asyncio.gather(*(subscribe() for _ in range(SUBSCRIPTIONS))))
    advanced = await api.post(
        f"/api/test-clocks/{clock}/advance", {"frozen_time": JAN_31_2027 + 364 * 86_400}
    )
    assert advanced.status_code == 200, advanced.text
    expected = SUBSCRIPTIONS * MONTHS

    async def some_renewed() -> bool:
        return await _invoices(db, subs) >= SUBSCRIPTIONS + 60

    await wait_until(some_renewed, timeout_s=60, what="the first renewals")
    assert await _invoices(db, subs) < expected, "the advance finished before the kill"
    ray.kill(ray.get_actor("job-scheduler-0", namespace=NAMESPACE), no_restart=False)

    async def all_billed() -> bool:
        status = (await api.get(f"/api/test-clocks/{clock}")).json()["data"]["status"]
        return status == "ready" and await _invoices(db, subs) == expected

    await wait_until(all_billed, timeout_s=120, what="every period billed after the kill")
    per_invoice = await db.fetch(
        """SELECT i.id, i.status, count(t.id) AS charges
           FROM invoices i LEFT JOIN transactions t
             ON t.metadata ->> 'invoice_id' = i.id::text AND t.status = 'succeeded'
           WHERE i.subscription_id = ANY($1::uuid[]) GROUP BY i.id, i.status""",
        subs,
    )
    assert len(per_invoice) == expected
    assert {(r["status"], r["charges"]) for r in per_invoice} == {("paid", 1)}
