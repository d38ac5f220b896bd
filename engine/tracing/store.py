"""The in-memory exporter shared by every process: finished spans land in Redis, one list per
trace, so a test or the request-timeline API reads a whole trace whichever replica or actor
recorded its spans.

Keys (each expires `ttl_s` after its last write, so the store holds only recent traces):
- `paygrid:trace:spans:<trace id>`: a list of spans as JSON (`FinishedSpan`'s fields);
- `paygrid:trace:correlation:<correlation id>`: the set of trace ids of the spans that carried
  that correlation id (the HTTP request's, the shard command's).

Written by the batch span processor's thread with a synchronous client (one pipelined round
trip per exported batch), never on a request's path. Redis being loss-tolerant state, an
export that fails is dropped, not retried: this is a development and test store; production
exports OTLP to a collector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from redis.asyncio import Redis

_SPANS = "paygrid:trace:spans:"
_CORRELATION = "paygrid:trace:correlation:"


@dataclass(frozen=True, slots=True)
class FinishedSpan:
    """One exported span, as stored: ids in lowercase hex, times in Unix nanoseconds."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str | None
    kind: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict[str, Any]
    # (trace id, span id) of each linked span.
    links: tuple[tuple[str, str], ...]
    events: tuple[dict[str, Any], ...]
    # The process that recorded it: `api-…`, `ledger-shard-0`, `webhook-dispatcher-0`, …
    process: str

    @classmethod
    def of(cls, span: ReadableSpan) -> FinishedSpan:
        context = span.get_span_context()
        assert context is not None
        return cls(
            name=span.name,
            trace_id=f"{context.trace_id:032x}",
            span_id=f"{context.span_id:016x}",
            parent_span_id=None if span.parent is None else f"{span.parent.span_id:016x}",
            kind=span.kind.name,
            start_ns=span.start_time or 0,
            end_ns=span.end_time or 0,
            status=span.status.status_code.name,
            attributes=dict(span.attributes or {}),
            links=tuple(
                (f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}")
                for link in span.links
            ),
            events=tuple(
                {
                    "name": e.name,
                    "timestamp_ns": e.timestamp,
                    "attributes": dict(e.attributes or {}),
                }
                for e in span.events
            ),
            process=str(span.resource.attributes.get("service.instance.id", "")),
        )

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "name": self.name,
                "trace_id": self.trace_id,
                "span_id": self.span_id,
                "parent_span_id": self.parent_span_id,
                "kind": self.kind,
                "start_ns": self.start_ns,
                "end_ns": self.end_ns,
                "status": self.status,
                "attributes": self.attributes,
                "links": self.links,
                "events": self.events,
                "process": self.process,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> FinishedSpan:
        data = orjson.loads(raw)
        data["links"] = tuple(tuple(link) for link in data["links"])
        data["events"] = tuple(data["events"])
        return cls(**data)


class RedisSpanExporter(SpanExporter):
    """Appends finished spans to their trace's list in Redis (see the module docstring)."""

    def __init__(self, redis_url: str, *, ttl_s: int) -> None:
        self._client = redis.Redis.from_url(redis_url, socket_timeout=5)
        self._ttl_s = ttl_s

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        pipe = self._client.pipeline(transaction=False)
        touched: set[str] = set()
        for span in spans:
            finished = FinishedSpan.of(span)
            key = _SPANS + finished.trace_id
            pipe.rpush(key, finished.to_json())
            touched.add(key)
            correlation = finished.attributes.get("paygrid.correlation_id")
            if isinstance(correlation, str):
                pipe.sadd(_CORRELATION + correlation, finished.trace_id)
                touched.add(_CORRELATION + correlation)
        # One expiry per key and batch, not per span.
        for key in touched:
            pipe.expire(key, self._ttl_s)
        try:
            pipe.execute()
        except redis.RedisError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._client.close()


async def spans_for_trace(client: Redis, trace_id: str) -> list[FinishedSpan]:
    """Every finished span of `trace_id` (32 lowercase hex digits) that reached the in-memory
    store, from any process, in start order. Empty when tracing is not in `memory` mode, the
    trace expired, or its processes have not exported yet (their batch processors export
    within `MEMORY_EXPORT_DELAY_MS`)."""
    raw = await client.lrange(_SPANS + trace_id.lower(), 0, -1)
    return sorted((FinishedSpan.from_json(r) for r in raw), key=lambda s: s.start_ns)


async def traces_for_correlation(client: Redis, correlation_id: str) -> list[str]:
    """The ids of the traces whose request carried `correlation_id` (usually one; a client
    may reuse an id), from the in-memory store."""
    members = await client.smembers(_CORRELATION + correlation_id)
    return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
