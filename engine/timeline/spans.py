"""The request timeline's spans: those the in-memory span store (`PAYGRID_TRACING=memory`) kept
for a correlation id, from every process, as timeline entries.

An OTLP backend keeps its spans to itself; there the timeline has the database rows only, and
the trace ids it needs to find the rest are on the request's log lines.
"""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from engine.timeline.models import TimelineEntry
from engine.tracing import spans_for_trace, traces_for_correlation


class StoredSpans:
    """A `SpanSource` over the in-memory span store in `redis`."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def __call__(self, correlation_id: str) -> list[TimelineEntry]:
        entries: list[TimelineEntry] = []
        for trace_id in await traces_for_correlation(self._redis, correlation_id):
            for span in await spans_for_trace(self._redis, trace_id):
                entries.append(
                    TimelineEntry(
                        kind="span",
                        id=span.span_id,
                        at=datetime.fromtimestamp(span.start_ns / 1e9, UTC),
                        detail={
                            "name": span.name,
                            "trace_id": span.trace_id,
                            "parent_span_id": span.parent_span_id,
                            "kind": span.kind,
                            "status": span.status,
                            "duration_ms": round((span.end_ns - span.start_ns) / 1e6, 3),
                            "process": span.process,
                        },
                    )
                )
        return entries
