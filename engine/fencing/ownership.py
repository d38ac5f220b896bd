"""One shard's claim on its slots, and the check every write transaction makes.

A shard claims its slots when it starts (bumping their epochs) and then checks, inside each
write transaction, that it still holds every slot the transaction touches at the epoch it
claimed. A newer claim by anyone (a restarted incarnation, a shard of a new configuration)
makes the check fail: the transaction rolls back and the caller answers a retryable 503, so
an actor that lost a slot never writes for it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import asyncpg

from engine.db.database import Database
from engine.errors import ShardMoved
from engine.fencing.repository import SlotRepository


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

    async def check(self, conn: asyncpg.Connection, slots: Iterable[int]) -> None:
        """Inside a write transaction: raise `ShardMoved` unless every slot in `slots` is still
        held at the claimed epoch (and keep them share-locked until the transaction ends)."""
        wanted = set(slots)
        fences = {s: self._fences[s] for s in wanted if s in self._fences}
        held = (
            await self._repository.held(conn, fences=fences, owner=self.owner) if fences else set()
        )
        lost = wanted - held
        if lost:
            for slot in lost:
                self._fences.pop(slot, None)
            raise ShardMoved(
                "the customer's ledger moved to another shard; retry with the same Idempotency-Key"
            )
