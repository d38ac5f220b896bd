"""The database seam: a lost or refused connection is a retryable `DatabaseUnavailable`, a
real SQL error passes through unchanged, the outage is logged once and its end once, and the
pool serves again when the server is back."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest

from engine.db.database import Database, is_unavailable, open_database
from engine.errors import DatabaseUnavailable
from tests.tcp_proxy import CuttableProxy, proxy_for_dsn, through_proxy


@pytest.fixture
async def proxy(migrated_dsn: str) -> AsyncIterator[CuttableProxy]:
    cuttable = proxy_for_dsn(migrated_dsn)
    await cuttable.start()
    yield cuttable
    await cuttable.stop()


@pytest.fixture
async def db(migrated_dsn: str, proxy: CuttableProxy) -> AsyncIterator[Database]:
    opened = await open_database(
        through_proxy(migrated_dsn, proxy.port), min_size=1, max_size=2, acquire_timeout_s=2
    )
    yield opened
    await opened.close()


async def _one(db: Database) -> int:
    async with db.connection() as conn:
        return int(await conn.fetchval("SELECT 1"))


async def test_an_outage_is_503_logged_once_and_ends(
    db: Database, proxy: CuttableProxy, caplog: pytest.LogCaptureFixture
) -> None:
    assert await _one(db) == 1
    with caplog.at_level(logging.WARNING, logger="paygrid.db"):
        proxy.sever()
        for _ in range(5):
            with pytest.raises(DatabaseUnavailable) as caught:
                await _one(db)
            assert (caught.value.http_status, caught.value.code) == (503, "database_unavailable")
        proxy.restore()
        assert await _one(db) == 1
        assert await _one(db) == 1
    messages = [r.getMessage() for r in caplog.records if r.name == "paygrid.db"]
    assert len(messages) == 2, messages
    assert messages[0].startswith("database unavailable")
    assert messages[1] == "database available again"


async def test_a_transaction_cut_mid_way_is_503_and_commits_nothing(
    db: Database, proxy: CuttableProxy, migrated_dsn: str
) -> None:
    async def insert_then_lose_the_connection() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO customers (erased_at) VALUES (now())")
            proxy.sever()
            await conn.execute("SELECT 1")

    with pytest.raises(DatabaseUnavailable):
        await insert_then_lose_the_connection()
    proxy.restore()
    direct = await asyncpg.connect(migrated_dsn)
    try:
        assert await direct.fetchval("SELECT count(*) FROM customers") == 0
    finally:
        await direct.close()


async def test_sql_errors_are_not_unavailability(db: Database) -> None:
    with pytest.raises(asyncpg.UndefinedTableError):
        async with db.connection() as conn:
            await conn.execute("SELECT * FROM no_such_table")
    with pytest.raises(asyncpg.CheckViolationError):
        async with db.connection() as conn:
            await conn.execute("INSERT INTO customers (email) VALUES ('x')")


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (asyncpg.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.AdminShutdownError("terminating connection"), True),
        (asyncpg.SerializationError("could not serialize access"), True),
        (asyncpg.DeadlockDetectedError("deadlock detected"), True),
        (asyncpg.InterfaceError("pool is closing"), True),
        (
            asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
            False,
        ),
        (asyncpg.UniqueViolationError("duplicate key"), False),
        (asyncpg.CheckViolationError("check"), False),
        (ValueError("a bug"), False),
    ],
)
def test_which_errors_mean_unavailable(error: BaseException, unavailable: bool) -> None:
    assert is_unavailable(error) is unavailable
