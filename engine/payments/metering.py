"""What a ledger shard's money commands come to, as metrics: each command's operation, outcome
and currency, approved amounts, idempotent replays, each call's time, and the commands inside
the shard (its queue depth). A few counter updates per command, after the results exist."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from engine.metrics.catalogue import (
    IDEMPOTENT_REPLAYS,
    PAYMENT_AMOUNTS,
    PAYMENTS,
    SHARD_MUTATION_DURATION,
    SHARD_QUEUE_DEPTH,
)
from engine.metrics.recorder import Metrics, Registry
from engine.payments.commands import (
    CapturePayment,
    Command,
    CommandResult,
    CreatePayment,
    RefundPayment,
)

_DECLINED = 402


def operation(command: Command) -> str:
    """purchase, authorize, capture, void or refund."""
    if isinstance(command, CreatePayment):
        return command.kind.value
    if isinstance(command, CapturePayment):
        return "capture"
    if isinstance(command, RefundPayment):
        return "refund"
    return "void"


def outcome(result: CommandResult) -> str:
    """succeeded (2xx), declined (402), refused (another 4xx) or error (5xx)."""
    if not result.is_error:
        return "succeeded"
    if result.status_code == _DECLINED:
        return "declined"
    return "refused" if result.status_code < 500 else "error"


def _currency(command: Command, result: CommandResult) -> str:
    if isinstance(command, CreatePayment):
        return command.money.currency
    currency = result.body.get("currency")
    return currency.upper() if isinstance(currency, str) and len(currency) == 3 else "none"


class ShardMeter:
    """Runs a shard's batches through `execute`, recording what they came to."""

    def __init__(self, metrics: Metrics, shard: int) -> None:
        self._metrics = metrics
        self._shard = (str(shard),)
        self._inside = 0

    async def run(
        self,
        commands: Sequence[Command],
        execute: Callable[[Sequence[Command]], Awaitable[list[CommandResult]]],
    ) -> list[CommandResult]:
        self._inside += len(commands)
        started = time.perf_counter()
        try:
            results = await execute(commands)
        finally:
            self._inside -= len(commands)
        self._metrics.observe(SHARD_MUTATION_DURATION, self._shard, time.perf_counter() - started)
        for command, result in zip(commands, results, strict=True):
            self._record(command, result)
        return results

    def collect(self, registry: Registry) -> None:
        """Set the queue-depth gauge (a registry collector)."""
        registry.set(SHARD_QUEUE_DEPTH, self._shard, self._inside)

    def _record(self, command: Command, result: CommandResult) -> None:
        op = operation(command)
        if result.replayed:
            self._metrics.inc(IDEMPOTENT_REPLAYS, (op,))
        currency = _currency(command, result)
        kind = outcome(result)
        self._metrics.inc(PAYMENTS, (op, kind, currency))
        if isinstance(command, CreatePayment) and kind == "succeeded" and not result.replayed:
            self._metrics.inc(PAYMENT_AMOUNTS, (op, currency), command.money.amount)
