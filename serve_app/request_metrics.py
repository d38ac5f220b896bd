"""Counts and times every HTTP request by route template (never the raw path, whose ids would
make the label set unbounded), method and status. Plain ASGI: a clock read before and after,
and two registry updates."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.metrics.catalogue import HTTP_DURATION, HTTP_REQUESTS
from engine.metrics.recorder import Metrics

# Paths no route matched (probes, typos, scans) share one label value.
UNMATCHED = "unmatched"
# A client may send any method name; the label takes only these.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The matched route's path template, as Starlette's router left it in the scope."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self._metrics.inc(HTTP_REQUESTS, (route, method, str(status)))
            self._metrics.observe(HTTP_DURATION, (route, method), elapsed)
