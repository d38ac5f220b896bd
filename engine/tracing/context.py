"""The W3C `traceparent` of a span, and the parent context a received one stands for: how a
trace crosses into a Ray actor (inside the command) and out to a webhook receiver."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def traceparent_of(context: SpanContext) -> str | None:
    """`00-<trace id>-<span id>-<flags>` for a valid span context, else None."""
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def current_traceparent() -> str | None:
    """The traceparent of the span current in this task, if it records one."""
    span: Span = trace.get_current_span()
    return traceparent_of(span.get_span_context()) if span.is_recording() else None


def remote_parent(traceparent: str | None) -> Context | None:
    """The context to start a child span in, for a received `traceparent` (None when absent or
    malformed: the span then starts a trace of its own)."""
    if not traceparent:
        return None
    context = _PROPAGATOR.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def span_context_of(traceparent: str | None) -> SpanContext | None:
    """The span context a `traceparent` names, to link to it."""
    parent = remote_parent(traceparent)
    return None if parent is None else trace.get_current_span(parent).get_span_context()
