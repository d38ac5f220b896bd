"""The replica's way to the ledger shards: routing by customer, batching per shard, and one
honest answer for each way a shard call can fail.

Each shard gets a Coalescer, so requests that arrive while a call to that shard is in flight
travel together in the next call: one actor hop for many payments.

How a failed call answers (`actors.shard_calls.call_shard`, shared with the job schedulers):
- the shard raised a `PaygridError` (a refusal, the database unavailable): that error, as is;
- the shard raised anything else (a bug): logged with the shard's traceback, answered 500
  `internal_error` (the correlation id in the answer finds the log line);
- the shard died or could not be reached: 503 `shard_unavailable`; whatever it committed stands
  and its successor settles the rest, so the client retries with its Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from functools import partial
from typing import Any
from uuid import UUID

from actors.fleet import Handle
from actors.shard_calls import call_shard, submit_traced
from engine.batching import Coalescer
from engine.ledger.entries import Balance
from engine.payments.commands import Command, CommandResult
from engine.sharding import shard_of

log = logging.getLogger("paygrid.api.shards")


class ShardRouter:
    """Routes money commands and balance reads to the shard that owns the customer."""

    def __init__(
        self, handles: Sequence[Handle], *, max_batch: int, calls_in_flight: int = 1
    ) -> None:
        self._handles = list(handles)
        # A shard pipelines, so several calls may be in flight to it; requests arriving while
        # all are out ride together in the next one.
        self._batches: list[Coalescer[Command, CommandResult]] = [
            Coalescer(partial(self._send, i), max_batch=max_batch, max_in_flight=calls_in_flight)
            for i in range(len(self._handles))
        ]

    @property
    def count(self) -> int:
        return len(self._handles)

    @property
    def handles(self) -> list[Handle]:
        return list(self._handles)

    async def ready(self) -> None:
        """Wait until every shard has started (and settled what it inherited)."""
        await asyncio.gather(*(h.ping.remote() for h in self._handles))

    async def execute(self, command: Command) -> CommandResult:
        """Run a money command on the shard that owns its customer."""
        index = shard_of(command.customer_id, self.count)
        return await submit_traced(self._batches[index], index, command)

    async def balances(self, customer_id: UUID) -> dict[str, Balance]:
        """The customer's balances per currency, from the shard's book."""
        index = shard_of(customer_id, self.count)
        raw: dict[str, Any] = await call_shard(
            index, self._handles[index].balances.remote(customer_id), logger=log
        )
        return {c: Balance(*v) for c, v in raw.items()}

    async def _send(self, index: int, commands: list[Command]) -> list[CommandResult]:
        results: list[CommandResult] = await call_shard(
            index, self._handles[index].execute.remote(commands), logger=log
        )
        return results
