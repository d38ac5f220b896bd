"""Per-key sequencing: work for one key runs one at a time, in the order it was reserved; work
for different keys runs concurrently.

A ledger shard reserves a turn for each command's customer the moment the command arrives
(synchronously, so arrival order is the order), then awaits the turn before it begins. A later
command of a customer therefore waits for that customer's earlier one, never for the whole
batch or for other customers. A turn whose holder failed still passes to the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from types import TracebackType
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Turn(Generic[K]):
    """One reserved place in a key's line; `async with` waits for it and gives it up."""

    def __init__(
        self,
        sequencer: KeyedSequencer[K],
        key: K,
        before: asyncio.Future[None] | None,
        mine: asyncio.Future[None],
    ) -> None:
        self._sequencer = sequencer
        self._key = key
        self._before = before
        self._mine = mine

    async def __aenter__(self) -> None:
        if self._before is not None and not self._before.done():
            # Shielded: a cancelled waiter must not cancel the turn it waits behind.
            await asyncio.shield(self._before)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def release(self) -> None:
        """Pass the turn on (idempotent)."""
        if not self._mine.done():
            self._mine.set_result(None)
        self._sequencer._forget(self._key, self._mine)


class KeyedSequencer(Generic[K]):
    def __init__(self) -> None:
        self._tails: dict[K, asyncio.Future[None]] = {}

    def reserve(self, key: K) -> Turn[K]:
        """The next turn for `key`, behind every turn reserved for it so far. Does not wait."""
        before = self._tails.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = mine
        return Turn(self, key, before, mine)

    def busy(self, key: K) -> bool:
        """Whether some turn of `key` is reserved and not yet given up."""
        return key in self._tails

    def __len__(self) -> int:
        return len(self._tails)

    def _forget(self, key: K, mine: asyncio.Future[None]) -> None:
        # Only the last turn of a line clears it; an earlier one leaves the line to its tail.
        if self._tails.get(key) is mine:
            del self._tails[key]
