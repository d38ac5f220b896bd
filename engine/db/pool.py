"""The asyncpg pool every process opens once, with JSON columns mapped to Python objects."""

from __future__ import annotations

import json

import asyncpg

from engine.tracing.sql import trace_statements


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
    trace_statements(conn)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a connection without asyncpg's reset query (advisory unlock, CLOSE ALL,
    UNLISTEN, RESET ALL): one more round trip per transaction, for session state paygrid never
    leaves on a pooled connection. LISTEN runs on dedicated connections, settings are
    `SET LOCAL`, and the migrations' session lock is released in their own `finally`. A
    transaction left open is still rolled back: asyncpg does that before calling this."""


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 4, synchronous_commit: bool = True
) -> asyncpg.Pool:
    """Open a pool on `dsn`; json/jsonb columns read and write as Python values. With
    `synchronous_commit` off, a commit returns before its WAL is on disk (see
    `engine.runtime.workers.start_scheduler` for the one pool that may)."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=30,
        server_settings={} if synchronous_commit else {"synchronous_commit": "off"},
    )
    assert pool is not None
    return pool
