"""Counts and times every HTTP request by route template (never the raw path, whose ids would
make the label set unbounded), method and status, and keeps it in the replica's requests in
flight while it runs. Plain ASGI: a clock read before and after, two registry updates and two
dict updates; the in-flight heartbeat does the rest off the request path."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.inflight.tracker import InFlight
from engine.metrics.catalogue import HTTP_DURATION, HTTP_REQUESTS
from engine.metrics.recorder import Metrics
from serve_app.middleware import correlation_id

# Paths no route matched (probes, typos, scans) share one label value.
UNMATCHED = "unmatched"
# A client may send any method name; the label takes only these.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Probes and scrapes are not what an operator looks for among requests in flight.
_NOT_TRACKED = frozenset({"/health", "/health/live", "/health/ready", "/metrics"})


def route_template(scope: Scope) -> str:
    """The matched route's path template, as Starlette's router left it in the scope."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _method(scope: Scope) -> str:
    return scope["method"] if scope["method"] in _METHODS else "OTHER"


def describe(scope: Scope) -> tuple[str, str, str]:
    """A request in flight, for the registry: method, route template, correlation id."""
    return _method(scope), route_template(scope), correlation_id(scope)


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, inflight: InFlight | None = None) -> None:
        self.app = app
        self._metrics = metrics
        self._inflight = inflight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        inflight = self._inflight if scope["path"] not in _NOT_TRACKED else None
        if inflight is not None:
            inflight.begin(scope, time.time())

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            if inflight is not None:
                inflight.end(scope)
            route = route_template(scope)
            method = _method(scope)
            self._metrics.inc(HTTP_REQUESTS, (route, method, str(status)))
            self._metrics.observe(HTTP_DURATION, (route, method), elapsed)
