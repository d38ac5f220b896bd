"""A process's tracer provider, from its settings and the OpenTelemetry environment.

`PAYGRID_TRACING` (`Settings.tracing`) picks the exporter:
- `auto` (default): OTLP over HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, otherwise off;
- `otlp`: OTLP over HTTP/protobuf, configured by the standard `OTEL_EXPORTER_OTLP_*` variables;
- `console`: each span as JSON on stderr (development; Ray keeps an actor's in its log files);
- `memory`: the shared in-memory store in Redis (`engine.tracing.store`), for tests and the
  request timeline;
- `off`: nothing.
Sampling follows `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` as the SDK reads them when
set; otherwise it is `parentbased_traceidratio` at `PAYGRID_TRACING_SAMPLE_RATIO` (0.01): a
request whose caller sent a traceparent follows the caller's sampled flag, one without is traced
one time in a hundred — what keeps tracing's cost on the purchase path under 10 % on two cores
(README, Benchmarks: one in ten cost 30 %). The ratio is a setting rather than the SDK's
environment so that every process of the cluster samples alike.
`OTEL_TRACES_SAMPLER=always_off` or `OTEL_SDK_DISABLED=true` turns tracing off as `off` does.

Off means off: `enabled()` is False, the HTTP middleware and the SQL hook are not installed, and
every other span site is one boolean check. The provider is this module's, not the SDK's global
one, like the process's logging configuration: one per process, replaced by a second call.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio, Sampler

from engine.config import Settings, TracingMode
from engine.tracing.scrubbing import ScrubbingExporter
from engine.tracing.store import RedisSpanExporter

SCOPE = "paygrid"
# The memory store is read by tests and the timeline right after a request: export promptly.
MEMORY_EXPORT_DELAY_MS = 100


@dataclass(frozen=True, slots=True)
class _Tracing:
    provider: TracerProvider
    tracer: trace.Tracer


# The process's provider, set by `configure_tracing` (see the module docstring for why global).
_current: list[_Tracing] = []
_NO_TRACER = trace.NoOpTracer()


def resolved_mode(mode: TracingMode) -> TracingMode:
    """What `mode` means in this process's environment: never `auto`."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "off"
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip().lower() == "always_off":
        return "off"
    if mode != "auto":
        return mode
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return "otlp" if any(os.environ.get(name) for name in endpoints) else "off"


def _exporter(mode: TracingMode, settings: Settings) -> SpanExporter:
    if mode == "memory":
        return RedisSpanExporter(settings.redis_dsn, ttl_s=settings.tracing_memory_ttl_s)
    if mode == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    # Imported only when used: it pulls in protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _sampler(settings: Settings) -> Sampler | None:
    # None: the SDK builds it from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG.
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    return ParentBasedTraceIdRatio(settings.tracing_sample_ratio)


def configure_tracing(settings: Settings, *, component: str, process: str) -> bool:
    """Set up this process's tracing from `settings.tracing` and the OTEL_* environment;
    `component` (api, shard, dispatcher, scheduler, cli) and `process` (its unique name) become
    the spans' resource. Returns whether tracing is on. Call before opening database pools
    (their connections get the SQL hook only when tracing is on)."""
    shutdown_tracing()
    mode = resolved_mode(settings.tracing)
    if mode == "off":
        return False
    resource = Resource.create(
        {
            "service.name": "paygrid",
            "service.namespace": "paygrid",
            "service.instance.id": process,
            "paygrid.component": component,
        }
    )
    provider = TracerProvider(resource=resource, sampler=_sampler(settings))
    delay = MEMORY_EXPORT_DELAY_MS if mode == "memory" else None
    provider.add_span_processor(
        BatchSpanProcessor(
            ScrubbingExporter(_exporter(mode, settings)), schedule_delay_millis=delay
        )
    )
    _current.append(_Tracing(provider, provider.get_tracer(SCOPE)))
    return True


def enabled() -> bool:
    """Whether this process records spans."""
    return bool(_current)


def tracer() -> trace.Tracer:
    """The process's tracer (a no-op one when tracing is off)."""
    return _current[-1].tracer if _current else _NO_TRACER


def flush_tracing(timeout_s: float = 5.0) -> bool:
    """Export every span finished so far (blocks: call it off the event loop, e.g. with
    `asyncio.to_thread`). True when done in time or when tracing is off."""
    if not _current:
        return True
    return _current[-1].provider.force_flush(int(timeout_s * 1000))


def shutdown_tracing() -> None:
    """Flush and stop this process's tracing; `enabled()` is False afterwards."""
    while _current:
        _current.pop().provider.shutdown()
