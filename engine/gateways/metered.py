"""A gateway wrapper that times every call: `paygrid_gateway_request_duration_seconds` by
gateway, operation and result (approved, declined, not_found for a lookup, error when it
raised), and, while tracing is on, a client span per call with the same three attributes (never
the request: it holds the card). It changes nothing else: same results, same exceptions."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TypeVar
from uuid import UUID

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from engine.gateways.base import (
    ChargeRequest,
    DebitRequest,
    Gateway,
    GatewayResult,
    LookupHint,
    OperationRequest,
    VerifyRequest,
    close_gateway,
    debits_of,
)
from engine.metrics.catalogue import GATEWAY_DURATION
from engine.metrics.recorder import Metrics
from engine.tracing import enabled, tracer

R = TypeVar("R", GatewayResult, GatewayResult | None)


class MeteredGateway:
    def __init__(self, inner: Gateway, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.name = inner.name
        self.lookup_grace_s = inner.lookup_grace_s

    async def aclose(self) -> None:
        """Close what the wrapped gateway holds open, if anything."""
        await close_gateway(self._inner)

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        return await self._timed("charge", self._inner.charge(request))

    async def verify(self, request: VerifyRequest) -> GatewayResult:
        return await self._timed("verify", self._inner.verify(request))

    async def debit(self, request: DebitRequest) -> GatewayResult:
        """The wrapped gateway's bank debit; refused before anything moves if it takes none."""
        return await self._timed("debit", debits_of(self._inner).debit(request))

    async def capture(self, request: OperationRequest) -> GatewayResult:
        return await self._timed("capture", self._inner.capture(request))

    async def void(self, request: OperationRequest) -> GatewayResult:
        return await self._timed("void", self._inner.void(request))

    async def refund(self, request: OperationRequest) -> GatewayResult:
        return await self._timed("refund", self._inner.refund(request))

    async def lookup(self, reference: UUID, hint: LookupHint | None = None) -> GatewayResult | None:
        return await self._timed("lookup", self._inner.lookup(reference, hint))

    async def _timed(self, operation: str, call: Awaitable[R]) -> R:
        if not enabled():
            return await self._measured(operation, call, None)
        with tracer().start_as_current_span(
            f"gateway {self.name} {operation}",
            kind=SpanKind.CLIENT,
            attributes={"paygrid.gateway": self.name, "paygrid.gateway.operation": operation},
        ) as span:
            return await self._measured(operation, call, span)

    async def _measured(self, operation: str, call: Awaitable[R], span: Span | None) -> R:
        started = time.perf_counter()
        result = "error"
        try:
            answer = await call
            if answer is None:
                result = "not_found"
            else:
                result = "approved" if answer.approved else "declined"
            return answer
        finally:
            elapsed = time.perf_counter() - started
            self._metrics.observe(GATEWAY_DURATION, (self.name, operation, result), elapsed)
            if span is not None:
                span.set_attribute("paygrid.gateway.result", result)
                if result == "error":
                    span.set_status(Status(StatusCode.ERROR))
