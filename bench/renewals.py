"""Renewals: `--subscriptions` (10,000) monthly subscriptions due at the same moment, renewed
through the ledger shards by one test clock's advance.

Setup, through the public API: a test clock, a monthly plan, then per subscription a customer on
the clock and a subscription on the plan with the card 4242… (its first invoice paid at once).
All start at the clock's frozen time, so all renew at the same moment. Measured: from the
`POST /api/test-clocks/{id}/advance` request that moves the clock one month until every
subscription's second invoice is paid, waiting on that condition in the database (bounded by
`--timeout-s`). A paid invoice's time is its `updated_at`: the start of the transaction that
settled it, on PostgreSQL's clock (the same machine's).

- duplicates: succeeded charges beyond one per invoice, plus period invoices beyond two per
  subscription, from the invoices and transactions tables (must be 0);
- skipped: subscriptions whose renewal was not paid when the wait ended.

    python -m bench.renewals [--subscriptions 10000] [--concurrency 32] [--timeout-s 900]

`--subscriptions 200` is a quick check (about 20 s with start-up); 10,000 take about two minutes
to set up over HTTP on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import httpx

from bench import report
from bench.stack import instance, save, serving
from bench.workload import CARD
from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.db import migrations
from engine.db.database import Database
from engine.db.pool import create_pool
from engine.ratelimit.limits import UNLIMITED

TARGET_RPS = 300.0
# 2027-01-01 and 2027-02-01, 00:00 UTC: one monthly period apart.
START = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp())
ONE_PERIOD_LATER = int(datetime(2027, 2, 1, tzinfo=UTC).timestamp())
_POLL_S = 0.2

_PAID_RENEWALS = """
    SELECT extract(epoch FROM updated_at)::float8 AS at FROM invoices
    WHERE billing_reason = 'subscription_cycle' AND status = 'paid'"""

# Succeeded charges beyond one per invoice, and period invoices beyond two per subscription
# (the first and its renewal): either would be a period charged twice.
_DUPLICATES = """
    SELECT
      (SELECT coalesce(sum(n - 1), 0) FROM (
         SELECT count(*) AS n FROM transactions
         WHERE status = 'succeeded' AND metadata ? 'invoice_id'
         GROUP BY metadata ->> 'invoice_id' HAVING count(*) > 1) charges)
    + (SELECT coalesce(sum(n - 2), 0) FROM (
         SELECT count(*) AS n FROM invoices
         WHERE billing_reason IN ('subscription_create', 'subscription_cycle')
         GROUP BY subscription_id HAVING count(*) > 2) periods)"""


@dataclass(frozen=True)
class Outcome:
    """What one run measured; times in seconds, `paid_at` relative to the advance request."""

    subscriptions: int
    setup_s: float
    paid_at: list[float]
    duplicates: int
    waited_s: float


class Api:
    """The bench's client: JSON in and out, 201/200 or an error naming the answer."""

    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self._client = client
        self._headers = {"Authorization": f"Bearer {key}"}

    async def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        """POST `body`; the answer's `data`."""
        response = await self._client.post(path, json=body, headers=self._headers)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:300]}")
        data: dict[str, object] = response.json()["data"]
        return data


async def _key(settings: Settings) -> str:
    pool = await create_pool(settings.database_dsn, min_size=1, max_size=1)
    try:
        _, key = await ApiKeyService(Database(pool), secret=settings.secret_bytes).create(
            name="bench-renewals",
            scopes=frozenset({Scope.SUBSCRIPTIONS, Scope.CUSTOMERS}),
            rate_limit=UNLIMITED,
        )
    finally:
        await pool.close()
    return key


async def _subscribe(api: Api, clock: object, plan: object, n: int) -> None:
    customer = await api.post(
        "/api/database/customers",
        {
            "email": f"renewal-{n}-{uuid.uuid4().hex[:8]}@example.com",
            "first_name": "Bench",
            "last_name": f"Renewal {n}",
            "consent": {"version": "bench", "accepted_at": "2026-11-01T00:00:00Z"},
            "test_clock": clock,
        },
    )
    sub = await api.post(
        "/api/subscriptions",
        {"customer_id": customer["id"], "plan_id": plan, "payment_method": CARD},
    )
    if sub["status"] != "active":
        raise RuntimeError(f"subscription {sub['id']} is {sub['status']}, not active")


async def _paid(conn: asyncpg.Connection) -> list[float]:
    return [r["at"] for r in await conn.fetch(_PAID_RENEWALS)]


async def _wait_paid(conn: asyncpg.Connection, expected: int, timeout_s: float) -> None:
    """Until `expected` renewals are paid, or `timeout_s` has passed (the table says how
    many were)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await conn.fetchval(f"SELECT count(*) FROM ({_PAID_RENEWALS}) paid") >= expected:
            return
        await asyncio.sleep(_POLL_S)


async def run(settings: Settings, base_url: str, args: argparse.Namespace) -> Outcome:
    """Set up the subscriptions, advance the clock one period, wait for every renewal."""
    key = await _key(settings)
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
        api = Api(client, key)
        setup_started = time.monotonic()
        clock = (await api.post("/api/test-clocks", {"frozen_time": START, "name": "bench"}))["id"]
        plan = (
            await api.post(
                "/api/plans",
                {"amount": 1500, "currency": "USD", "interval": "month", "name": "bench"},
            )
        )["id"]
        gate = asyncio.Semaphore(args.concurrency)

        async def one(n: int) -> None:
            async with gate:
                await _subscribe(api, clock, plan, n)

        await asyncio.gather(*(one(n) for n in range(args.subscriptions)))
        setup_s = time.monotonic() - setup_started

        conn = await asyncpg.connect(settings.database_dsn)
        try:
            advanced_at = time.time()
            await api.post(f"/api/test-clocks/{clock}/advance", {"frozen_time": ONE_PERIOD_LATER})
            await _wait_paid(conn, args.subscriptions, args.timeout_s)
            waited_s = time.time() - advanced_at
            paid_at = sorted(at - advanced_at for at in await _paid(conn))
            duplicates = int(await conn.fetchval(_DUPLICATES))
        finally:
            await conn.close()
    return Outcome(args.subscriptions, setup_s, paid_at, duplicates, waited_s)


def _percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def table(outcome: Outcome, settings: Settings, cpus: int, args: argparse.Namespace) -> str:
    """The results as Markdown, in the house style."""
    paid = len(outcome.paid_at)
    last = outcome.paid_at[-1] if outcome.paid_at else float("nan")
    rps = paid / last if paid and last > 0 else 0.0
    return report.markdown(
        "Renewals",
        report.facts(
            {
                "conditions": (
                    f"{outcome.subscriptions} monthly subscriptions on one test clock, all due at "
                    "the same moment; one advance of one period; sandbox at "
                    f"{settings.sandbox_latency_ms} ms; {settings.describe_counts()} (fitted to "
                    f"{cpus} CPUs)"
                ),
                "setup": (
                    f"{outcome.setup_s:.1f} s through the public API (customer on the clock, then "
                    f"subscription with card 4242…, first invoice paid), {args.concurrency} at once"
                ),
                "timed": "from the advance request to each renewal invoice's settling transaction",
                "wait": f"{outcome.waited_s:.1f} s (bounded at {args.timeout_s:.0f} s)",
                "target": f">= {TARGET_RPS:.0f} renewals/s on two cores",
            }
        ),
        [
            "subscriptions",
            "renewals paid",
            "duplicates",
            "skipped",
            "renewals/s",
            "last paid s",
            "p50 s",
            "p99 s",
        ],
        [
            [
                str(outcome.subscriptions),
                str(paid),
                str(outcome.duplicates),
                str(outcome.subscriptions - paid),
                report.rate(rps),
                f"{last:.1f}",
                f"{_percentile(outcome.paid_at, 50):.1f}",
                f"{_percentile(outcome.paid_at, 99):.1f}",
            ]
        ],
    )


def main() -> int:
    """Run the renewal benchmark and print (and keep) its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32, help="setup requests at once")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="wait for renewals")
    args = parser.parse_args()
    with instance(sandbox_latency_ms=0) as settings:

        async def migrate() -> None:
            conn = await asyncpg.connect(settings.database_dsn)
            try:
                await migrations.migrate(conn)
            finally:
                await conn.close()

        asyncio.run(migrate())
        with serving(settings) as served:
            outcome = asyncio.run(run(served.settings, served.url, args))
    save("renewals", table(outcome, served.settings, served.cpus, args))
    return 0 if outcome.duplicates == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
