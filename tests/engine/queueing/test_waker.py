"""Wake-ups survive a lost connection: the waker listens again after its backend is terminated
(as after a PostgreSQL restart). And the worker loop stays quiet about database outages, which
the Database seam reports once, while still reporting other failures."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import pytest

from engine.errors import DatabaseUnavailable
from engine.queueing.loop import run_woken
from engine.queueing.waker import Waker
from tests.waiting import wait_until

CHANNEL = "paygrid_test_wakeups"


async def _listening_pid(conn: asyncpg.Connection, name: str) -> int | None:
    """The backend of the waker `name` once it listens."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """SELECT pid FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = $1
             AND query LIKE 'LISTEN%'""",
        f"paygrid-waker:{name}",
    )


async def test_waker_listens_again_after_its_connection_is_terminated(
    migrated_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    wake = asyncio.Event()
    waker = Waker(migrated_dsn, CHANNEL, wake, name="test", retry_s=0.05, check_s=0.1)
    task = asyncio.get_running_loop().create_task(waker.run())
    admin = await asyncpg.connect(migrated_dsn)
    try:
        pids: list[int] = []

        async def listening() -> bool:
            pid = await _listening_pid(admin, "test")
            if pid is not None and pid not in pids and wake.is_set():
                pids.append(pid)
                return True
            return False

        async def notified() -> None:
            wake.clear()
            await admin.execute("SELECT pg_notify($1, '')", CHANNEL)
            await asyncio.wait_for(wake.wait(), timeout=5)

        await wait_until(listening, what="the waker to listen", timeout_s=10)
        await notified()
        with caplog.at_level(logging.WARNING, logger="paygrid.queueing"):
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pids[0])
            await wait_until(
                listening, what="the waker to listen on a new connection", timeout_s=10
            )
        await notified()
        assert pids[1] != pids[0]
        messages = [r.getMessage() for r in caplog.records]
        assert messages == [
            "test: no wake-up connection (connection closed); polling until it is back",
            "test: listening for wake-ups again",
        ]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await admin.close()
    assert await _listening_pid_after_close(migrated_dsn) is None


async def _listening_pid_after_close(dsn: str) -> int | None:
    conn = await asyncpg.connect(dsn)
    try:
        return await _listening_pid(conn, "test")
    finally:
        await conn.close()


async def test_loop_logs_failed_rounds_but_not_database_outages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    failures: list[Exception] = [
        DatabaseUnavailable("down"),
        DatabaseUnavailable("down"),
        RuntimeError("a bug"),
    ]
    rounds = 0

    async def round_() -> int:
        nonlocal rounds
        rounds += 1
        if failures:
            raise failures.pop(0)
        return 0

    async def done() -> bool:
        return rounds > 3

    wake = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="paygrid.queueing"):
        loop = asyncio.get_running_loop().create_task(
            run_woken(round_, wake, poll_s=0.01, name="test-worker")
        )
        try:
            await wait_until(done, what="four rounds", timeout_s=10)
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    assert [r.getMessage() for r in caplog.records] == ["test-worker: round failed"]
