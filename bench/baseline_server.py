"""The yardstick's process: `bench.baseline_app` under uvicorn, one worker or several.

The schema is created here, before any worker starts: workers racing on `CREATE TABLE IF NOT
EXISTS` can fail on PostgreSQL's catalog unique index, and once it exists their own lifespan
step is a no-op. The server listens on 127.0.0.1 only and is stopped on the way out.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from bench.baseline_app import SCHEMA
from bench.stack import wait_ready
from engine.runtime import local

# Connections all workers together may hold: embedded PostgreSQL allows 100, and the instance's
# own pools and superuser slots need some of them.
_CONNECTIONS = 80


async def _create_schema(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()


@contextmanager
def running(dsn: str, *, workers: int = 1) -> Iterator[str]:
    """The baseline app on a free loopback port with `workers` uvicorn workers; yields its URL
    once it answers."""
    asyncio.run(_create_schema(dsn))
    port = local.free_port()
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
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={
            **os.environ,
            "DATABASE_URL": dsn,
            "BENCH_POOL_MAX": str(min(8, max(2, _CONNECTIONS // workers))),
        },
    )
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(wait_ready(base + "/docs"))
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
