"""LedgerShard: the serializer and cache of money movements for the customers of its slots.

It only delegates: `engine/payments/service.py` pipelines its commands, serializing per customer.

Guarantees after a restart (crash, `ray.kill`, node loss): nothing is lost, because every
mutation was durable in PostgreSQL before its caller got an answer. The new incarnation claims
its slots first (from then on the old one, were it still alive somewhere, writes nothing), loads
its customers' recent attempts for the AML rules, reloads balances lazily from the ledger
entries, and settles in the background the rows the previous one left `processing` (asking the
gateway what happened), while it already serves. Calls in flight during the crash fail with an
actor error; their clients retry with the same Idempotency-Key and get the settled answer.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from uuid import UUID

import ray

from actors.gateway_circuits import shared_breakers
from actors.placement import placement
from engine.config import Settings
from engine.errors import DatabaseUnavailable
from engine.logs.setup import configure_logging
from engine.payments.commands import Command, CommandResult
from engine.runtime.shard import ShardRuntime, open_shard_runtime
from engine.tracing.setup import configure_tracing

log = logging.getLogger("paygrid.shard")


@ray.remote
class LedgerShard:
    # Ray awaits an async __init__ before the first call (mypy expects a sync one).
    async def __init__(self, settings: Settings, index: int) -> None:  # type: ignore[misc]
        configure_logging(component="shard", process=f"ledger-shard-{index}")
        configure_tracing(settings, component="shard", process=f"ledger-shard-{index}")
        self._index = index
        self._gateways = settings.gateways
        self._fingerprint = settings.fingerprint()
        self._sweep_interval_s = settings.shard_sweep_interval_s
        self._started_at = datetime.now(UTC)
        self._runtime: ShardRuntime = await open_shard_runtime(
            settings, index, breakers=shared_breakers(settings, f"ledger-shard-{index}")
        )
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def execute(self, commands: list[Command]) -> list[CommandResult]:
        """Run money commands for this shard's customers; one result each, in order."""
        return await self._runtime.execute(commands)

    async def balances(self, customer_id: UUID) -> dict[str, tuple[int, int, int]]:
        """The customer's (held, captured, refunded) per currency."""
        book = await self._runtime.service.balances(customer_id)
        return {c: (b.held, b.captured, b.refunded) for c, b in book.items()}

    async def gateway_circuits(self) -> dict[str, str]:
        """Each configured gateway's circuit as this shard last saw it."""
        return dict(self._runtime.breakers.states(self._gateways))

    async def ping(self) -> int:
        return self._index

    async def settings_fingerprint(self) -> str:
        """Which settings this incarnation runs with (see `actors.fleet`)."""
        return self._fingerprint

    async def where(self) -> dict[str, object]:
        """Where this actor runs, for operators."""
        return placement(self._index)

    async def incarnation(self) -> str:
        """When this incarnation started: changes on every restart."""
        return self._started_at.isoformat()

    async def sweep(self) -> None:
        """One round: settle rows left processing past the settle-after delay (bank debits
        once their settlement is due), expire lapsed authorizations, reverse returned bank
        debits, evict idle customers. Runs periodically; safe to call at any time."""
        await self._round(datetime.now(UTC) - self._runtime.settle_after)

    async def _round(self, cutoff: datetime) -> None:
        settled = await self._runtime.service.recover(older_than=cutoff)
        if settled:
            log.warning("shard %d settled %d rows left processing", self._index, settled)
        await self._runtime.service.expire_authorizations()
        returned = await self._runtime.check_bank_returns()
        if returned:
            log.info("shard %d reversed %d returned bank debits", self._index, returned)
        self._runtime.book.evict_idle()

    async def _sweep_forever(self) -> None:
        """First what the previous incarnation left, then a round every sweep interval."""
        cutoff = self._started_at
        while True:
            try:
                await self._round(cutoff)
            except DatabaseUnavailable:
                pass  # the database seam logs an outage once; the next round retries
            except Exception:  # logged; the next round retries
                log.exception("shard %d sweep failed", self._index)
            await asyncio.sleep(self._sweep_interval_s)
            cutoff = datetime.now(UTC) - self._runtime.settle_after
