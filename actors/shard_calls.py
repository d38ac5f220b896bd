"""The ledger shards as an actor reaches them (a job scheduler's renewals): found by name,
routed by customer, one command per call, and each way a call can fail turned into the error
the engine expects (a refusal as itself, a dead shard as retryable `shard_unavailable`)."""

from __future__ import annotations

import logging

import ray
from ray.exceptions import RayError, RayTaskError

from actors.options import NAMESPACE
from engine.errors import InternalError, PaygridError, UpstreamError
from engine.payments.commands import Command, CommandResult
from engine.sharding import shard_of

log = logging.getLogger("paygrid.shard_calls")


class ShardCalls:
    """Runs money commands on the shard that owns their customer, for an engine `Executor`."""

    def __init__(self, shard_count: int) -> None:
        self._count = shard_count

    async def execute(self, command: Command) -> CommandResult:
        index = shard_of(command.customer_id, self._count)
        try:
            # Looked up per call: a shard restarted under its name is found again.
            handle = ray.get_actor(f"ledger-shard-{index}", namespace=NAMESPACE)
            results: list[CommandResult] = await handle.execute.remote([command])
        except RayTaskError as exc:
            if isinstance(exc.cause, PaygridError):
                raise exc.cause from None
            log.error("ledger shard %d failed: %s", index, exc)
            raise InternalError("an internal error occurred") from None
        except (RayError, ValueError) as exc:
            raise UpstreamError(
                f"ledger shard {index} is unavailable; the job retries under the same key",
                code="shard_unavailable",
            ) from exc
        return results[0]
