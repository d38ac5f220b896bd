"""JSON lines on stderr for one paygrid process, every handler scrubbed.

Each line: `timestamp` (UTC, ISO 8601), `level`, `message`, `logger`, `correlation_id` (the
request's, where the line was written on its behalf), `component` (api, shard, dispatcher,
scheduler, cli) and `process` (the replica or actor: `ledger-shard-0`, `api-…`), `trace_id` and
`span_id` when written inside a traced span (engine/tracing), and `exception` when there is
one. Ray sends an actor's stderr to its worker log files, so the actors' lines land there, in
the same shape.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

import orjson
from opentelemetry import trace

from engine.logs.context import current_correlation
from engine.logs.scrubber import ScrubbingFilter, scrub


class JsonFormatter(logging.Formatter):
    def __init__(self, *, component: str, process: str) -> None:
        super().__init__()
        self._component = component
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "correlation_id": current_correlation(),
            "component": self._component,
            "process": self._process,
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = f"{span.trace_id:032x}"
            line["span_id"] = f"{span.span_id:016x}"
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # Scrubbed whole, after serialization: whatever field a secret hid in is covered.
        return scrub(orjson.dumps(line).decode())


class _Installed(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs (found again to replace it, not stack it)."""


def configure_logging(
    *, component: str, process: str, level: int = logging.INFO, stream: TextIO | None = None
) -> None:
    """Send this process's logs to `stream` (stderr) as scrubbed JSON lines, and put a
    scrubber on every other handler already attached (Ray's and Serve's own)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Installed)]:
        root.removeHandler(handler)
    handler = _Installed(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(component=component, process=process))
    root.addHandler(handler)
    root.setLevel(level)
    scrubber = ScrubbingFilter()
    loggers = [root, *(logging.getLogger(n) for n in ("ray", "ray.serve", "ray.data"))]
    for logger in loggers:
        for each in logger.handlers:
            if not any(isinstance(f, ScrubbingFilter) for f in each.filters):
                each.addFilter(scrubber)
