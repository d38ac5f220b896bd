"""A span for each SQL statement, named by what it does (`INSERT transactions`, `COMMIT`),
never by its text or parameters.

The hook is asyncpg's query logger, added to each pooled connection when it opens and only
while tracing is on: asyncpg times the statements of a connection that has a logger and calls
it on the event loop's next turn, in a copy of the running task's context, so the span gets
its parent (the batch or command span running the statement) for free. A statement run outside
any recorded span is not traced. No repository changes,
and nothing at all on connections opened while tracing is off.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from engine.tracing.setup import enabled, tracer

_OPERATION = re.compile(r"^\s*(?:--[^\n]*\n\s*)*([A-Za-z]+)")
_TARGET = re.compile(
    r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE|LOCK)\s+(?:ONLY\s+)?([A-Za-z_][A-Za-z0-9_.]*)", re.IGNORECASE
)


@lru_cache(maxsize=1024)
def statement_name(query: str) -> tuple[str, str, str | None]:
    """(span name, operation, table) for `query`: its first keyword and the first table it
    names. Queries are module constants, so
    the cache holds them all."""
    first = _OPERATION.match(query)
    operation = first.group(1).upper() if first else "SQL"
    target = _TARGET.search(query)
    table = target.group(1).lower() if target else None
    return (f"{operation} {table}" if table else operation), operation, table


def _record(record: Any) -> None:
    # Only statements run for traced work: an unsampled request's (and background sweeps')
    # cost one check, not a span.
    if not trace.get_current_span().is_recording():
        return
    name, operation, table = statement_name(record.query)
    end = time.time_ns()
    attributes: dict[str, str] = {"db.system.name": "postgresql", "db.operation.name": operation}
    if table is not None:
        attributes["db.collection.name"] = table
    span = tracer().start_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=end - int(record.elapsed * 1e9),
    )
    if record.exception is not None:
        span.set_attribute("error.type", type(record.exception).__name__)
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=end)


def trace_statements(conn: asyncpg.Connection) -> None:
    """Give `conn` a span per statement, if tracing is on in this process."""
    if enabled():
        conn.add_query_logger(_record)
