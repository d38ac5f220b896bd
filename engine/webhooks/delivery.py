"""One delivery attempt: the signed POST and what its answer means.

The body is built once from the event row and those exact bytes are signed and sent. The
`webhook-id` is the event id, stable across retries, so receivers dedupe on it.

Traced, each attempt is a trace of its own (a client span), linked to the span of the request
that caused the event when `TraceOrigins` still knows it, and the `traceparent` the receiver
gets is that attempt span's. Untraced, the `traceparent` is a random one, flagged not sampled.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
import orjson
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from engine.queueing.policy import Outcome
from engine.tracing import TraceOrigins, enabled, traceparent_of, tracer
from engine.tracing.context import span_context_of
from engine.webhooks.models import Claimed
from engine.webhooks.signing import signature_header

EXCERPT_CHARS = 500


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # 429, 5xx, timeout, connection trouble
    REJECTED = "rejected"  # other answers: the receiver refuses this delivery
    GONE = "gone"  # 410: the receiver asks us to stop sending to this endpoint

    @property
    def outcome(self) -> Outcome:
        """What the verdict means for the delivery in its queue."""
        if self is Verdict.DELIVERED:
            return Outcome.SUCCEEDED
        if self is Verdict.RETRY:
            return Outcome.RETRY
        return Outcome.FAILED


@dataclass(frozen=True, slots=True)
class Attempt:
    verdict: Verdict
    http_status: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None

    @property
    def outcome(self) -> Outcome:
        return self.verdict.outcome


def body_of(claimed: Claimed) -> bytes:
    """The payload as delivered: id, type, created, data.object, correlation_id."""
    return orjson.dumps(
        {
            "id": str(claimed.event_id),
            "type": claimed.event_type,
            "created": int(claimed.event_created.timestamp()),
            "data": {"object": claimed.payload},
            "correlation_id": claimed.correlation_id,
        }
    )


def _verdict(status: int) -> Verdict:
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status == 410:
        return Verdict.GONE
    if status == 429 or status >= 500:
        return Verdict.RETRY
    return Verdict.REJECTED


class Deliverer:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float,
        origins: TraceOrigins | None = None,
    ) -> None:
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._origins = origins

    async def send(self, claimed: Claimed) -> Attempt:
        """POST the event to the endpoint, signed with every live secret; never follows
        redirects and never raises for the receiver's trouble."""
        if not enabled():
            return await self._post(
                claimed, f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
            )
        origin = None
        if self._origins is not None and claimed.correlation_id:
            origin = span_context_of(await self._origins.find(claimed.correlation_id))
        with tracer().start_as_current_span(
            f"webhook {claimed.event_type}",
            context=Context(),
            kind=SpanKind.CLIENT,
            links=[Link(origin)] if origin is not None else (),
            attributes={
                "paygrid.webhook.event_id": str(claimed.event_id),
                "paygrid.webhook.event_type": claimed.event_type,
                "paygrid.webhook.endpoint_id": str(claimed.endpoint.id),
                "paygrid.correlation_id": claimed.correlation_id or "",
            },
        ) as span:
            traceparent = traceparent_of(span.get_span_context())
            attempt = await self._post(claimed, traceparent or "")
            _describe(span, attempt)
            return attempt

    async def _post(self, claimed: Claimed, traceparent: str) -> Attempt:
        body = body_of(claimed)
        msg_id = str(claimed.event_id)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                list(claimed.signing_secrets), msg_id, timestamp, body
            ),
            "user-agent": "paygrid-webhooks/1",
        }
        if traceparent:
            headers["traceparent"] = traceparent
        if claimed.correlation_id:
            headers["x-correlation-id"] = claimed.correlation_id
        started = time.perf_counter()
        try:
            async with self._session.post(
                claimed.endpoint.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout,
            ) as response:
                text = (await response.content.read(EXCERPT_CHARS)).decode(errors="replace")
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Attempt(
                Verdict.RETRY,
                None,
                _ms(started),
                None,
                f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS],
            )
        verdict = _verdict(status)
        error = None if verdict is Verdict.DELIVERED else f"HTTP {status}"
        return Attempt(verdict, status, _ms(started), text or None, error)


def _describe(span: Span, attempt: Attempt) -> None:
    span.set_attribute("paygrid.webhook.verdict", attempt.verdict.value)
    if attempt.http_status is not None:
        span.set_attribute("http.response.status_code", attempt.http_status)
    if attempt.verdict is not Verdict.DELIVERED:
        span.set_status(Status(StatusCode.ERROR))


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
