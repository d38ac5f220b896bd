"""One shard's claim on its slots, and the transactions that write under it.

A shard claims its slots when it starts (bumping their epochs) and runs every write transaction
through `transaction(conn, slots)`, which begins by holding the slots it touches at the epochs
it claimed (migration 0004's `paygrid_hold_slots`). A newer claim by anyone (a restarted
incarnation, a shard of a new configuration) waits for those transactions to end and makes the
next one fail: it rolls back before writing anything and the caller answers a retryable 503,
so an actor that lost a slot never writes for it again.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import asyncpg

from engine.db.database import Database
from engine.errors import ShardMoved
from engine.fencing.repository import SLOTS_LOST, SlotRepository


def _moved() -> ShardMoved:
    return ShardMoved(
        "the customer's ledger moved to another shard; retry with the same Idempotency-Key"
    )


class SlotOwnership:
    def __init__(self, *, name: str, slots: Iterable[int]) -> None:
        # A fresh owner id per incarnation: a restart of the same shard is a new owner too.
        self.owner = f"{name}/{uuid.uuid4().hex[:12]}"
        self._wanted = sorted(set(slots))
        self._fences: dict[int, int] = {}
        self._repository = SlotRepository()

    @property
    def slots(self) -> list[int]:
        """The slots this shard holds (claimed and not lost)."""
        return sorted(self._fences)

    def owns(self, slot: int) -> bool:
        return slot in self._fences

    async def claim(self, db: Database) -> None:
        """Take this shard's slots from whoever held them."""
        async with db.transaction() as conn:
            self._fences = await self._repository.claim(conn, slots=self._wanted, owner=self.owner)

    @asynccontextmanager
    async def transaction(
        self, conn: asyncpg.Connection, slots: Iterable[int]
    ) -> AsyncIterator[None]:
        """A transaction on `conn` that holds `slots` until it ends: committed when the block
        ends, rolled back if it raises. `ShardMoved`, before anything is written, if one of the
        slots is no longer this shard's."""
        wanted = sorted(set(slots))
        if not all(s in self._fences for s in wanted):
            raise _moved()
        fences = {s: self._fences[s] for s in wanted}
        try:
            await self._repository.begin_holding(conn, fences=fences, owner=self.owner)
        except asyncpg.PostgresError as exc:
            await _rollback(conn)
            if exc.sqlstate == SLOTS_LOST:
                # Which of them moved is not said: stop writing for all of them.
                for slot in wanted:
                    self._fences.pop(slot, None)
                raise _moved() from exc
            raise
        try:
            yield
        except BaseException:
            await _rollback(conn)
            raise
        await conn.execute("COMMIT")


async def _rollback(conn: asyncpg.Connection) -> None:
    # The error that got us here is the one to report. A connection too broken to roll back
    # (closed, or already taken back by its pool when the server went away) is discarded by
    # its pool, and the server rolls the transaction back with it.
    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        if not conn.is_closed():
            await conn.execute("ROLLBACK")
