"""What a span may carry out of the process: an allow-list of attribute keys, every string value
masked by the log scrubber (card numbers, CVCs, `pgk_`/`whsec_` secrets, credentials).

Applied to every finished span on its way to any exporter (`ScrubbingExporter`), span events
(exceptions) and links included, so no code path — an exception message quoting a card number,
an attribute someone adds later — can export a card number, CVC, customer PII, API key or
secret: a key not listed here is dropped, not masked. Names of spans are built from route
templates, statement names and command types, never from input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import AttributeValue

from engine.logs.scrubber import scrub

ALLOWED_ATTRIBUTES = frozenset(
    {
        # The HTTP request: the route's template, never the raw path (ids) or query (filters).
        "http.request.method",
        "http.route",
        "http.response.status_code",
        # SQL: a statement's name (operation and table), never its text or parameters.
        "db.system.name",
        "db.operation.name",
        "db.collection.name",
        "error.type",
        # Exceptions as the SDK records them; message and stack trace pass the scrubber.
        "exception.type",
        "exception.message",
        "exception.stacktrace",
        "exception.escaped",
        "paygrid.correlation_id",
        "paygrid.shard",
        "paygrid.command",
        "paygrid.batch.size",
        "paygrid.gateway",
        "paygrid.gateway.operation",
        "paygrid.gateway.result",
        "paygrid.job.id",
        "paygrid.job.kind",
        "paygrid.job.outcome",
        "paygrid.webhook.event_id",
        "paygrid.webhook.event_type",
        "paygrid.webhook.endpoint_id",
        "paygrid.webhook.verdict",
    }
)


# Most values repeat (route templates, statement names, command types): scrubbed once each.
_scrub_cached = lru_cache(maxsize=4096)(scrub)


def _clean(value: AttributeValue) -> AttributeValue:
    if isinstance(value, str):
        return _scrub_cached(value) if len(value) <= 200 else scrub(value)
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        return [scrub(v) if isinstance(v, str) else v for v in value]
    return value


def scrubbed_attributes(
    attributes: Mapping[str, AttributeValue] | None,
) -> dict[str, AttributeValue]:
    """`attributes` with only the allowed keys, their strings scrubbed."""
    if not attributes:
        return {}
    return {k: _clean(v) for k, v in attributes.items() if k in ALLOWED_ATTRIBUTES}


def scrubbed_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of `span` fit to leave the process."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=scrubbed_attributes(span.attributes),
        events=[Event(e.name, scrubbed_attributes(e.attributes), e.timestamp) for e in span.events],
        links=[Link(link.context) for link in span.links],
        kind=span.kind,
        status=Status(
            span.status.status_code,
            scrub(span.status.description) if span.status.description else None,
        ),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class ScrubbingExporter(SpanExporter):
    """Wraps the process's exporter: every span it gets has passed `scrubbed_span`. Runs on
    the batch processor's thread, off the request path."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([scrubbed_span(s) for s in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)
