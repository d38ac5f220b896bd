"""Purchase throughput: paygrid's full path against a plain uvicorn + FastAPI + asyncpg process.

Both run in one invocation on the same machine and database server, so the ratio survives a noisy
box. paygrid's path: API-key auth, pydantic validation, Idempotency-Key (a fresh one per request),
routing to the customer's ledger shard, the `processing` write, the sandbox gateway (0 ms), the
finalizing transaction with ledger entry, outbox event, audit rows and idempotency record.

    python -m bench.purchase_load [--duration 20] [--concurrency 32,64] [--customers 10000]

Traffic goes only to 127.0.0.1; every phase is bounded in time and request count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import asyncpg

from bench.load import Result, run, table
from bench.stack import instance, machine, save, serving, wait_ready
from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.db import migrations
from engine.db.database import Database
from engine.db.pool import create_pool
from engine.runtime import local

CARD = {
    "type": "card",
    "number": "4242424242424242",
    "exp_month": 12,
    "exp_year": 2034,
    "cvc": "123",
}


async def seed(settings: Settings, customers: int) -> tuple[str, list[str]]:
    """Migrate, make a payments key and `customers` customers; returns (key, customer ids)."""
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        await migrations.migrate(conn)
        ids = [uuid.uuid4() for _ in range(customers)]
        await conn.copy_records_to_table(
            "customers",
            records=[(i, f"bench-{n}@example.com") for n, i in enumerate(ids)],
            columns=["id", "email"],
        )
    finally:
        await conn.close()
    pool = await create_pool(settings.database_dsn, min_size=1, max_size=1)
    try:
        _, key = await ApiKeyService(Database(pool), secret=settings.secret_bytes).create(
            name="bench", scopes=frozenset({Scope.PAYMENTS_WRITE})
        )
    finally:
        await pool.close()
    return key, [str(i) for i in ids]


def purchases(path: str, customers: list[str], key: str | None, seed_value: int):  # type: ignore[no-untyped-def]
    rng = random.Random(seed_value)

    def make(i: int) -> tuple[str, dict[str, str], bytes]:
        body = {
            "amount": 100 + i % 9000,
            "currency": "USD",
            "customer_id": rng.choice(customers),
            "payment_method": CARD,
        }
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return path, headers, json.dumps(body).encode()

    return make


async def measure(
    name: str, base: str, path: str, customers: list[str], key: str | None, args: argparse.Namespace
) -> list[Result]:
    await run(
        f"{name} warm-up",
        base,
        purchases(path, customers, key, 0),
        concurrency=16,
        duration_s=args.warmup,
        max_requests=args.max_requests,
    )
    results = []
    for c in args.concurrency:
        result = await run(
            name,
            base,
            purchases(path, customers, key, c),
            concurrency=c,
            duration_s=args.duration,
            max_requests=args.max_requests,
        )
        print(
            f"  {name} c={c}: {result.rps:,.0f} req/s, p50 {result.percentile(50):.1f} ms, "
            f"p99 {result.percentile(99):.1f} ms, errors {result.errors} {result.statuses}",
            flush=True,
        )
        results.append(result)
    return results


def bench_paygrid(
    settings: Settings, key: str, customers: list[str], args: argparse.Namespace
) -> list[Result]:
    with serving(settings) as base:
        return asyncio.run(measure("paygrid", base, "/api/payments/purchase", customers, key, args))


def bench_baseline(
    settings: Settings, customers: list[str], args: argparse.Namespace
) -> list[Result]:
    port = local.free_port()
    env = {**os.environ, "DATABASE_URL": settings.database_dsn}
    process = subprocess.Popen(  # noqa: S603 - our own module, no shell
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.baseline_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(base + "/docs"))
        return asyncio.run(
            measure("uvicorn+FastAPI+asyncpg", base, "/purchase", customers, None, args)
        )
    finally:
        process.terminate()
        process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[32, 64]
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    with instance(sandbox_latency_ms=0) as settings:
        key, customers = asyncio.run(seed(settings, args.customers))
        print(f"seeded {len(customers)} customers; {machine()}", flush=True)
        results = bench_paygrid(settings, key, customers, args)
        if not args.skip_baseline:
            results += bench_baseline(settings, customers, args)

    extra = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "duration per run": f"{args.duration:.0f} s",
        "shards": settings.ledger_shards,
        "replicas": settings.replicas,
    }
    by_c = {(r.name, r.concurrency): r for r in results}
    for c in args.concurrency:
        ours, theirs = by_c.get(("paygrid", c)), by_c.get(("uvicorn+FastAPI+asyncpg", c))
        if ours and theirs and theirs.rps:
            extra[f"ratio paygrid/baseline at c={c}"] = f"{ours.rps / theirs.rps:.2f}"
    save("purchase", table(results, "POST /api/payments/purchase", extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
