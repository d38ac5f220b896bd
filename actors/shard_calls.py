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
from functools import partial
from typing import Any, TypeVar

import ray
from opentelemetry.trace import SpanKind
from ray.actor import ActorHandle
from ray.exceptions import RayError, RayTaskError

from actors.options import NAMESPACE
from engine.batching import Coalescer
from engine.errors import InternalError, PaygridError, UpstreamError
from engine.payments.commands import Command, CommandResult, with_traceparent
from engine.sharding import shard_of
from engine.tracing.context import traceparent_of
from engine.tracing.setup import enabled, tracer

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


async def submit_traced(
    batches: Coalescer[Command, CommandResult], index: int, command: Command
) -> CommandResult:
    """Submit `command` to shard `index`'s batches, in a client span whose context travels in
    the command (the shard's span for it is that span's child) when tracing is on."""
    if not enabled():
        return await batches.submit(command)
    with tracer().start_as_current_span(
        "LedgerShard.execute",
        kind=SpanKind.CLIENT,
        attributes={"paygrid.shard": index, "paygrid.command": type(command).__name__},
    ) as span:
        traceparent = traceparent_of(span.get_span_context())
        return await batches.submit(with_traceparent(command, traceparent))


class ShardCalls:
    """Runs money commands on the shard that owns their customer, for an engine `Executor`.

    Commands for one shard that arrive while calls to it are out ride together in the next call
    (a Coalescer per shard, as the API replicas' router does): one actor hop for many renewals.
    Each command still gets its own answer; only a call that fails as a whole (the shard dead or
    unreachable) fails every command it carried, each retried by its job under the same key.
    """

    def __init__(self, shard_count: int, *, max_batch: int, calls_in_flight: int) -> None:
        self._count = shard_count
        # Looked up once per shard: `ray.get_actor` is a blocking GCS round trip, too slow for
        # every call. Dropped when a call fails at the actor level, so that a shard restarted
        # under its name is found again.
        self._handles: dict[int, ActorHandle[Any]] = {}
        self._batches: list[Coalescer[Command, CommandResult]] = [
            Coalescer(partial(self._send, i), max_batch=max_batch, max_in_flight=calls_in_flight)
            for i in range(shard_count)
        ]

    async def execute(self, command: Command) -> CommandResult:
        """Run `command` on its customer's shard; a dead or missing shard is 503."""
        index = shard_of(command.customer_id, self._count)
        return await submit_traced(self._batches[index], index, command)

    def _handle(self, index: int) -> ActorHandle[Any]:
        handle = self._handles.get(index)
        if handle is None:
            try:
                handle = ray.get_actor(f"ledger-shard-{index}", namespace=NAMESPACE)
            except ValueError as exc:
                raise UpstreamError(
                    _RETRY_JOB.format(index=index), code="shard_unavailable"
                ) from exc
            self._handles[index] = handle
        return handle

    async def _send(self, index: int, commands: list[Command]) -> list[CommandResult]:
        handle = self._handle(index)
        try:
            results: list[CommandResult] = await call_shard(
                index, handle.execute.remote(commands), unavailable=_RETRY_JOB.format(index=index)
            )
        except UpstreamError as exc:
            if isinstance(exc.__cause__, RayError) and self._handles.get(index) is handle:
                del self._handles[index]
            raise
        return results
