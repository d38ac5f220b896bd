"""A gateway wrapper that retries, with exponential backoff and jitter, only the calls that are
safe to repeat.

Safe to repeat:
- a `lookup`, whatever went wrong (it reads, it moves nothing);
- a capture, void or refund the gateway deduplicates by our reference (the gateway's
  `deduplicates`), and only when the failure is known not to have reached the gateway
  (`GatewayError.ambiguous` is False, e.g. a refused connection).

Never repeated: an ambiguous failure of a money-moving call (a timeout, a dropped answer: the
gateway may have acted), whatever the gateway promises, so the row stays `processing` with its
outcome unknown and recovery asks the gateway with `lookup`; and charges and verifications
altogether: a charge that never reached its gateway goes to the next gateway of its route at
once (failover), and its circuit must see the failure now, not after the backoff.

The delays are the seed's policy by default (1 s, doubling, at most 5 min, 5 retries, ±20 % jitter,
`PAYGRID_GATEWAY_RETRY_*`); jitter spreads the retries of calls that failed together. A call
stops retrying once its next delay would take its waiting past `PAYGRID_GATEWAY_RETRY_BUDGET_S`
(5 s): these calls run while an API request, or the shard's recovery sweep, waits for them, and
the policy's later delays (8 s, 16 s, … 5 min) belong to queued work, not to a caller on the line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar
from uuid import UUID

from engine.config import Settings
from engine.gateways.base import (
    ChargeRequest,
    DebitRequest,
    Gateway,
    GatewayError,
    GatewayResult,
    LookupHint,
    OperationRequest,
    VerifyRequest,
    close_gateway,
    debits_of,
)
from engine.queueing.policy import RetryPolicy

log = logging.getLogger("paygrid.gateways")

R = TypeVar("R", GatewayResult, GatewayResult | None)

Sleep = Callable[[float], Awaitable[None]]


def gateway_retry_policy(settings: Settings) -> RetryPolicy:
    """The retry delays `settings` ask for: `gateway_retries` delays growing from
    `gateway_retry_initial_s` by `gateway_retry_multiplier`, each at most
    `gateway_retry_max_delay_s`, with ±`gateway_retry_jitter`."""
    schedule = tuple(
        min(
            settings.gateway_retry_max_delay_s,
            settings.gateway_retry_initial_s * settings.gateway_retry_multiplier**n,
        )
        for n in range(settings.gateway_retries)
    )
    return RetryPolicy(
        schedule_s=schedule,
        jitter=settings.gateway_retry_jitter,
        max_delay_s=settings.gateway_retry_max_delay_s,
    )


class RetryingGateway:
    """`inner`, its safe calls retried under `policy`. `deduplicates` names the operations
    (`capture`, `void`, `refund`) that `inner` deduplicates by our reference; `budget_s`, if
    given, bounds one call's waiting between retries, all together."""

    def __init__(
        self,
        inner: Gateway,
        policy: RetryPolicy,
        *,
        deduplicates: Collection[str] = (),
        budget_s: float | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._inner = inner
        self._policy = policy
        self._budget_s = budget_s
        self._deduplicates = frozenset(deduplicates) & {"capture", "void", "refund"}
        self._sleep = sleep
        self.name = inner.name
        self.lookup_grace_s = inner.lookup_grace_s

    async def aclose(self) -> None:
        """Close what the wrapped gateway holds open, if anything."""
        await close_gateway(self._inner)

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        return await self._inner.charge(request)

    async def verify(self, request: VerifyRequest) -> GatewayResult:
        return await self._inner.verify(request)

    async def debit(self, request: DebitRequest) -> GatewayResult:
        """The wrapped gateway's bank debit, never repeated (it moves money); refused before
        anything moves if the gateway takes none."""
        return await debits_of(self._inner).debit(request)

    async def capture(self, request: OperationRequest) -> GatewayResult:
        return await self._operation("capture", lambda: self._inner.capture(request))

    async def void(self, request: OperationRequest) -> GatewayResult:
        return await self._operation("void", lambda: self._inner.void(request))

    async def refund(self, request: OperationRequest) -> GatewayResult:
        return await self._operation("refund", lambda: self._inner.refund(request))

    async def lookup(self, reference: UUID, hint: LookupHint | None = None) -> GatewayResult | None:
        return await self._retried(
            "lookup", lambda: self._inner.lookup(reference, hint), lambda _: True
        )

    async def _operation(
        self, kind: str, call: Callable[[], Awaitable[GatewayResult]]
    ) -> GatewayResult:
        if kind not in self._deduplicates:
            return await call()
        return await self._retried(kind, call, lambda error: not error.ambiguous)

    async def _retried(
        self,
        kind: str,
        call: Callable[[], Awaitable[R]],
        repeatable: Callable[[GatewayError], bool],
    ) -> R:
        """`call`'s answer; a `GatewayError` that `repeatable` accepts is retried after the
        policy's delay until the retries are spent, then raised."""
        failures, waited = 0, 0.0
        while True:
            try:
                return await call()
            except GatewayError as error:
                failures += 1
                delay = self._policy.delay_after(failures) if repeatable(error) else None
                if delay is None or (
                    self._budget_s is not None and waited + delay > self._budget_s
                ):
                    raise
                log.warning(
                    "%s %s failed (%s); retry %d in %.1f s",
                    self.name,
                    kind,
                    error.args[0],
                    failures,
                    delay,
                )
                await self._sleep(delay)
                waited += delay
