"""The pool hands connections back without a reset round trip, and never with a transaction
still open; commits are synchronous unless a pool says otherwise."""

from __future__ import annotations

import asyncio

import asyncpg

from engine.db.pool import create_pool


async def _queries_of_one_transaction(pool: asyncpg.Pool) -> list[str]:
    """Every query a transaction's connection sent, through its release to the pool."""
    sent: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda record: sent.append(record.query))
        async with conn.transaction():
            await conn.execute("SELECT 1")
    await asyncio.sleep(0)  # query loggers are called soon after, not within, the query
    return sent


async def test_release_sends_no_reset_query(migrated_dsn: str) -> None:
    pool = await create_pool(migrated_dsn, min_size=1, max_size=1)
    default = await asyncpg.create_pool(migrated_dsn, min_size=1, max_size=1)
    assert default is not None
    try:
        assert len(await _queries_of_one_transaction(pool)) == 3  # BEGIN, SELECT 1, COMMIT
        # asyncpg's own default sends a fourth, the reset query, at every release.
        assert "RESET ALL" in (await _queries_of_one_transaction(default))[-1]
    finally:
        await pool.close()
        await default.close()


async def test_a_transaction_left_open_is_rolled_back_on_release(migrated_dsn: str) -> None:
    pool = await create_pool(migrated_dsn, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS left_open (n int)")
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO left_open VALUES (1)")
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT count(*) FROM left_open") == 0
    finally:
        await pool.close()


async def test_synchronous_commit_is_on_unless_a_pool_turns_it_off(migrated_dsn: str) -> None:
    durable = await create_pool(migrated_dsn, min_size=1, max_size=1)
    relaxed = await create_pool(migrated_dsn, min_size=1, max_size=1, synchronous_commit=False)
    try:
        async with durable.acquire() as conn:
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
        async with relaxed.acquire() as conn:
            assert await conn.fetchval("SHOW synchronous_commit") == "off"
    finally:
        await durable.close()
        await relaxed.close()
