"""The replica's way to the ledger shards: routing by customer, batching per shard.

Each shard gets a Coalescer, so requests that arrive while a call to that shard is in flight
travel together in the next call: one actor hop for many payments.
"""

from __future__ import annotations

import asyncio
from functools import partial
from uuid import UUID

from ray.actor import ActorHandle
from ray.exceptions import RayError

from actors.ledger_shard import LedgerShard
from actors.options import ledger_shard_options
from engine.batching import Coalescer
from engine.config import Settings
from engine.errors import UpstreamError
from engine.ledger.entries import Balance
from engine.payments.commands import Command, CommandResult
from engine.sharding import shard_of


class ShardRouter:
    def __init__(self, settings: Settings, *, max_in_flight: int = 1) -> None:
        self._count = settings.ledger_shards
        self._handles = [
            LedgerShard.options(**ledger_shard_options(i)).remote(settings, i)  # type: ignore[attr-defined]
            for i in range(self._count)
        ]
        self._batches: list[Coalescer[Command, CommandResult]] = [
            Coalescer(
                partial(self._send, i),
                max_batch=settings.shard_max_batch,
                max_in_flight=max_in_flight,
            )
            for i in range(self._count)
        ]

    @property
    def count(self) -> int:
        return self._count

    @property
    def handles(self) -> list[ActorHandle]:
        return list(self._handles)

    async def ready(self) -> None:
        """Wait until every shard has started (and settled what it inherited)."""
        await asyncio.gather(*(h.ping.remote() for h in self._handles))

    async def execute(self, command: Command) -> CommandResult:
        """Run a money command on the shard that owns its customer."""
        index = shard_of(command.customer_id, self._count)
        return await self._batches[index].submit(command)

    async def balances(self, customer_id: UUID) -> dict[str, Balance]:
        handle = self._handles[shard_of(customer_id, self._count)]
        try:
            raw = await handle.balances.remote(customer_id)
        except RayError as exc:
            raise UpstreamError(
                "the ledger shard is unavailable; retry shortly", code="shard_unavailable"
            ) from exc
        return {c: Balance(*v) for c, v in raw.items()}

    async def _send(self, index: int, commands: list[Command]) -> list[CommandResult]:
        try:
            return await self._handles[index].execute.remote(commands)  # type: ignore[no-any-return]
        except RayError as exc:
            # The shard died mid-call: whatever it committed stands and its successor settles
            # the rest; the client retries with its Idempotency-Key to learn the outcome.
            raise UpstreamError(
                "the ledger shard restarted mid-request; retry with the same Idempotency-Key",
                code="shard_unavailable",
            ) from exc
