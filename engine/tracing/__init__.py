"""OpenTelemetry traces for every paygrid process: the HTTP request, each call into a ledger
shard, each SQL statement, each gateway call, each scheduler job and each webhook attempt.

Public API (for the other packages):
- `configure_tracing(settings, component=, process=)` once per process at start, before its
  pools open (API replica, each actor, the CLI); `shutdown_tracing()` on the way out.
- `enabled()`: whether this process records spans at all. Everything here costs one boolean
  check and nothing else when it is off.
- `tracer()`, `remote_parent(traceparent)`, `current_traceparent()`, `traceparent_of(span)`:
  start spans and carry the W3C context across a process boundary.
- `spans_for_trace(redis, trace_id)` and `traces_for_correlation(redis, correlation_id)`: the
  finished spans of a trace, from every process, as the in-memory exporter stored them in Redis.
- `TraceOrigins`: which span caused the events of a correlation id (webhook attempts link it).
- `scrubbed_attributes` / `ALLOWED_ATTRIBUTES`: the allow-list every exported span passes.
"""

from engine.tracing.context import (
    current_traceparent,
    remote_parent,
    traceparent_of,
)
from engine.tracing.origins import TraceOrigins
from engine.tracing.scrubbing import ALLOWED_ATTRIBUTES, scrubbed_attributes
from engine.tracing.setup import (
    configure_tracing,
    enabled,
    flush_tracing,
    shutdown_tracing,
    tracer,
)
from engine.tracing.store import FinishedSpan, spans_for_trace, traces_for_correlation

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "FinishedSpan",
    "TraceOrigins",
    "configure_tracing",
    "current_traceparent",
    "enabled",
    "flush_tracing",
    "remote_parent",
    "scrubbed_attributes",
    "shutdown_tracing",
    "spans_for_trace",
    "traceparent_of",
    "tracer",
    "traces_for_correlation",
]
