"""Webhook delivery throughput and commit-to-delivery latency, against a local receiver.

Events are written to the outbox the way payments write them (one transaction per batch); the
fan-out trigger creates one delivery each for a single subscribed endpoint, and the dispatcher
actors deliver them to an aiohttp receiver on 127.0.0.1 that answers 200.

- paced: `--rate` events/s for `--paced-s` seconds, for the latency of an unsaturated queue
  (p50/p99 from each batch's commit to its receipt);
- burst: `--events` (10,000) committed at once, for deliveries/s until the last one arrives.

    python -m bench.webhook_throughput [--events 10000] [--rate 200] [--paced-s 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import httpx
import orjson
from aiohttp import web

from bench.stack import instance, machine, save, serving
from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.db import migrations
from engine.db.database import Database
from engine.db.pool import create_pool
from engine.events.outbox import Event, Outbox
from engine.ratelimit.limits import UNLIMITED

BATCH = 100


@dataclass
class Sink:
    """Receipt time of every event, by its correlation id (unique per bench event)."""

    received: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        tag = orjson.loads(await request.read())["correlation_id"]
        if tag in self.received:
            self.duplicates += 1
        else:
            self.received[tag] = time.time()
            if len(self.received) >= self.expected:
                self.done.set()
        return web.Response(text="ok")


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


async def _write(pool: asyncpg.Pool, count: int) -> tuple[list[str], float]:
    """Commit `count` events in one transaction; their tags and the commit time."""
    tags = [f"bench-{uuid.uuid4().hex}" for _ in range(count)]
    events = [
        Event("payment.succeeded", "payment", uuid.uuid4(), {"id": tag, "amount": 100}, None, tag)
        for tag in tags
    ]
    async with pool.acquire() as conn, conn.transaction():
        await Outbox().add(conn, events=events)
    return tags, time.time()


async def run(settings: Settings, base_url: str, args: argparse.Namespace) -> list[str]:
    sink = Sink()
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    pool = await create_pool(settings.database_dsn, min_size=1, max_size=2)
    _, key = await ApiKeyService(Database(pool), secret=settings.secret_bytes).create(
        name="bench", scopes=frozenset({Scope.WEBHOOKS}), rate_limit=UNLIMITED
    )
    async with httpx.AsyncClient(base_url=base_url) as client:
        created = await client.post(
            "/api/webhooks/endpoints",
            json={"url": f"http://127.0.0.1:{port}/hook", "enabled_events": ["payment.succeeded"]},
            headers={"Authorization": f"Bearer {key}"},
        )
        created.raise_for_status()

    lines = []
    # Paced: commit-to-delivery latency while the queue keeps up.
    commits: dict[str, float] = {}
    per_batch = max(1, args.rate // 10)
    sink.expected = per_batch * 10 * int(args.paced_s)
    sink.done.clear()
    for _ in range(10 * int(args.paced_s)):
        ids, at = await _write(pool, per_batch)
        commits.update(dict.fromkeys(ids, at))
        await asyncio.sleep(0.1)
    await asyncio.wait_for(sink.done.wait(), timeout=120)
    latencies = [(sink.received[i] - t) * 1000 for i, t in commits.items()]
    lines.append(
        f"| paced, {args.rate} events/s | {len(commits)} | - | "
        f"{_percentile(latencies, 50):.0f} | {_percentile(latencies, 99):.0f} | "
        f"{sink.duplicates} |"
    )

    # Burst: throughput of a full queue.
    sink.received.clear()
    sink.expected = args.events
    sink.done.clear()
    started = time.time()
    commits = {}
    for _ in range(args.events // BATCH):
        ids, at = await _write(pool, BATCH)
        commits.update(dict.fromkeys(ids, at))
    await asyncio.wait_for(sink.done.wait(), timeout=600)
    elapsed = max(sink.received.values()) - started
    latencies = [(sink.received[i] - t) * 1000 for i, t in commits.items()]
    lines.append(
        f"| burst of {args.events} | {len(commits)} | {len(commits) / elapsed:,.0f} | "
        f"{_percentile(latencies, 50):.0f} | {_percentile(latencies, 99):.0f} | "
        f"{sink.duplicates} |"
    )
    await pool.close()
    await runner.cleanup()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=200, help="paced phase, events per second")
    parser.add_argument("--paced-s", type=float, default=10.0)
    args = parser.parse_args()
    with instance(webhook_allow_private=True) as settings:

        async def migrate() -> None:
            pool = await create_pool(settings.database_dsn, min_size=1, max_size=1)
            async with pool.acquire() as conn:
                await migrations.migrate(conn)
            await pool.close()

        asyncio.run(migrate())
        with serving(settings) as served:
            rows = asyncio.run(run(served.settings, served.url, args))
    report = "\n".join(
        [
            "### Webhook delivery",
            "",
            f"- date: {datetime.now(UTC).date().isoformat()}",
            f"- machine: {machine()}",
            f"- dispatchers: {served.settings.webhook_dispatchers} (fitted to {served.cpus} CPUs"
            " unless PAYGRID_WEBHOOK_DISPATCHERS is set), one endpoint, receiver answers 200",
            "",
            "| phase | events | deliveries/s | p50 commit→delivery ms | p99 ms | duplicates |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    save("webhooks", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
