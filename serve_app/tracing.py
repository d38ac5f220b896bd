"""A server span for every HTTP request: named `<method> <route template>` (never the raw path,
whose ids would make names unbounded), with its status, the child of the caller's `traceparent`
when one is sent (W3C trace context; with the default parent-based sampler, the caller's
sampled flag decides), and its correlation id. Plain ASGI and outermost, so it covers every
route, the money routes that skip FastAPI's dependency solver included, and every answer
(refusals by the middleware inside it too). Installed only while tracing is on."""

from __future__ import annotations

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.tracing.context import remote_parent
from engine.tracing.setup import tracer
from serve_app.middleware import correlation_id
from serve_app.request_metrics import route_template


class TracingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        traceparent = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"traceparent"), None
        )
        method = scope["method"]
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer().start_as_current_span(
            f"{method} unmatched",
            context=remote_parent(traceparent),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("paygrid.correlation_id", correlation_id(scope))
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
