"""The one way engine code reaches PostgreSQL: a pool whose "unavailable" errors are translated
here, at the seam, into `DatabaseUnavailable` (503, retryable).

What counts as unavailable: the connection refused, reset or lost mid-statement; the server
starting up, shutting down or recovering from a crash; too many connections; no pooled
connection free within `acquire_timeout_s`; a statement timing out; a serialization failure or a
deadlock (the transaction rolled back and may simply be run again). Every other driver error is
a bug or a constraint the caller handles itself, and passes through unchanged.

An outage is logged once when it starts and once when it ends, not once per request: each
process keeps one flag.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from engine.db.pool import create_pool
from engine.errors import DatabaseUnavailable

log = logging.getLogger("paygrid.db")

# SQLSTATE classes and codes that mean "not now" rather than "never".
_UNAVAILABLE_CLASSES = ("08", "53", "57P")
_RETRYABLE_STATES = frozenset({"40001", "40P01", "57014", "25006"})
# asyncpg raises plain InterfaceErrors for a closed connection or pool.
_CLOSED_MESSAGES = ("connection is closed", "pool is closing", "pool is closed")


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot serve right now (retry) rather than that the
    request or the code is wrong."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        return state in _RETRYABLE_STATES or state.startswith(_UNAVAILABLE_CLASSES)
    if isinstance(exc, asyncpg.InterfaceError):
        return any(text in str(exc) for text in _CLOSED_MESSAGES)
    return False


@dataclass(frozen=True, slots=True)
class PoolState:
    """How many connections this process's pool holds, and how many are free."""

    size: int
    idle: int
    min_size: int
    max_size: int

    @property
    def in_use(self) -> int:
        return self.size - self.idle


class Database:
    """A connection pool behind the unavailability seam. Services open connections and
    transactions here and never see a driver's connection errors."""

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout_s: float = 5.0) -> None:
        self._pool = pool
        self._acquire_timeout_s = acquire_timeout_s
        self._down = False

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for the block; unavailability raised in it becomes
        `DatabaseUnavailable`."""
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout_s) as conn:
                yield conn
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            if not is_unavailable(exc):
                raise
            self._outage(exc)
            raise DatabaseUnavailable(
                "the database is unavailable; retry shortly with the same Idempotency-Key",
            ) from exc
        self._available()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside a transaction that commits when the block ends."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        """One round trip; raises `DatabaseUnavailable` if there is none."""
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")

    def pool_state(self) -> PoolState:
        """The pool's connections now (this process only)."""
        pool = self._pool
        return PoolState(
            pool.get_size(), pool.get_idle_size(), pool.get_min_size(), pool.get_max_size()
        )

    async def close(self) -> None:
        await self._pool.close()

    def _outage(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "database unavailable (%s); answering 503 until it is back", type(exc).__name__
            )

    def _available(self) -> None:
        if self._down:
            self._down = False
            log.warning("database available again")


async def open_database(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 4,
    acquire_timeout_s: float = 5.0,
    synchronous_commit: bool = True,
) -> Database:
    """A `Database` on a new pool (see `engine.db.pool.create_pool`)."""
    pool = await create_pool(
        dsn, min_size=min_size, max_size=max_size, synchronous_commit=synchronous_commit
    )
    return Database(pool, acquire_timeout_s=acquire_timeout_s)
