"""What a purchase load must leave behind after a test broke something under it (a node lost,
a rolling upgrade): a webhook receiver that records what arrived, and the checks that every
request got exactly one answer and the records agree."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from aiohttp import web

from tests.local_server import serving
from tests.purchase_load import PurchaseLoad
from tests.waiting import wait_until


@dataclasses.dataclass
class Hooks:
    """A webhook receiver on 127.0.0.1 that counts the deliveries of each event id."""

    url: str = ""
    arrivals: Counter[str] = dataclasses.field(default_factory=Counter)

    @property
    def ids(self) -> set[str]:
        """The distinct event ids that arrived (what a receiver deduping on webhook-id keeps)."""
        return set(self.arrivals)

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals[request.headers["webhook-id"]] += 1
        return web.Response(status=200)


@asynccontextmanager
async def receiving_hooks() -> AsyncIterator[Hooks]:
    """A `Hooks` receiver serving on a free port until the block ends."""
    receiver = Hooks()
    async with serving(receiver.handle) as url:
        receiver.url = f"{url}/"
        yield receiver


async def every_request_has_one_answer(load: PurchaseLoad) -> None:
    """Each request answered 200 replays the same payment with its key; each other one, retried
    with its key, ends answered 200."""
    for sent in load.sent:
        if sent.status == 200:
            assert sent.response is not None
            replay = await load.final_answer(sent)
            assert replay.json()["data"]["id"] == sent.response.json()["data"]["id"]
        else:
            final = await load.final_answer(sent)
            assert final.status_code == 200, final.text


async def records_agree(db: asyncpg.Pool, load: PurchaseLoad, hooks: Hooks) -> set[str]:
    """One succeeded payment per key, the ledger equal to the payments, every event sent at
    least once; returns the ids of the load's events."""
    keys = [s.key for s in load.sent]
    rows = await db.fetch(
        """SELECT t.id, t.status FROM idempotency_keys i
           JOIN transactions t ON t.id = i.resource_id
           WHERE i.idempotency_key = ANY($1::text[])""",
        keys,
    )
    assert len(rows) == len(keys)
    assert {r["status"] for r in rows} == {"succeeded"}
    ledger, captured = await db.fetchrow(
        """SELECT (SELECT coalesce(sum(amount), 0) FROM ledger_entries
                   WHERE customer_id = ANY($1::uuid[]) AND account = 'captured'),
                  (SELECT coalesce(sum(amount_captured), 0) FROM transactions
                   WHERE customer_id = ANY($1::uuid[]) AND parent_id IS NULL)""",
        load.customers,
    )
    assert ledger == captured
    events = {
        str(r["id"])
        for r in await db.fetch(
            "SELECT id FROM events WHERE object_id = ANY($1::uuid[])", [r["id"] for r in rows]
        )
    }
    assert len(events) == len(rows)

    async def delivered() -> bool:
        return events <= hooks.ids

    await wait_until(delivered, timeout_s=120, what="every event delivered at least once")
    return events
