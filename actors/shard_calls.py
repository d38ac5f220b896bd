"""The ledger shards as a Ray process reaches them: one honest answer for each way a shard call
can fail (`call_shard`, shared with the API replicas' router), and a job scheduler's way to the
shards (`ShardCalls`): found by name, routed by customer, batched per shard.

How a failed call answers:
- the shard raised a `PaygridError` (a refusal, the database unavailable): that error, as is;
- the shard raised anything else (a bug): logged here with the shard's traceback, answered 500
  `internal_error`;
- the shard died or could not be reached: 503 `shard_unavailable`; whatever it committed stands
  and its successor settles the rest, so the caller retries under the same idempotency key.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TypeVar

import ray
from ray.exceptions import RayError, RayTaskError

from actors.options import NAMESPACE
from engine.errors import InternalError, PaygridError, UpstreamError
from engine.payments.commands import Command, CommandResult
from engine.sharding import shard_of

log = logging.getLogger("paygrid.shard_calls")

T = TypeVar("T")

_RETRY_WITH_KEY = "the ledger shard restarted mid-request; retry with the same Idempotency-Key"
_RETRY_JOB = "ledger shard {index} is unavailable; the job retries under the same key"


async def call_shard(
    index: int,
    call: Awaitable[T],
    *,
    logger: logging.Logger = log,
    unavailable: str = _RETRY_WITH_KEY,
) -> T:
    """Await a shard call, turning its failure into the one error the caller should see;
    failures are logged to `logger`, and `unavailable` is the 503's message."""
    try:
        return await call
    except RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, PaygridError):
            # Rebuilt from its args on this side of the process boundary: its own status and
            # code, without the remote traceback.
            raise cause from None
        logger.error("ledger shard %d failed: %s", index, exc)
        raise InternalError("an internal error occurred") from None
    except RayError as exc:
        logger.warning("ledger shard %d unreachable: %s", index, type(exc).__name__)
        raise UpstreamError(unavailable, code="shard_unavailable") from exc


class ShardCalls:
    """Runs money commands on the shard that owns their customer, for an engine `Executor`."""

    def __init__(self, shard_count: int) -> None:
        self._count = shard_count

    async def execute(self, command: Command) -> CommandResult:
        """Run `command` on its customer's shard; a dead or missing shard is 503."""
        index = shard_of(command.customer_id, self._count)
        try:
            # Looked up per call: a shard restarted under its name is found again.
            handle = ray.get_actor(f"ledger-shard-{index}", namespace=NAMESPACE)
        except ValueError as exc:
            raise UpstreamError(_RETRY_JOB.format(index=index), code="shard_unavailable") from exc
        results: list[CommandResult] = await call_shard(
            index, handle.execute.remote([command]), unavailable=_RETRY_JOB.format(index=index)
        )
        return results[0]
