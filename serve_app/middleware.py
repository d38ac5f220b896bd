"""Correlation ids: echoed when the caller sends a sane one, minted otherwise, and returned on
every response. Plain ASGI, so it costs one dict lookup per request."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-correlation-id"
_SANE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def correlation_id(scope: Scope) -> str:
    """The request's correlation id, as set by the middleware."""
    return str(scope.get("state", {}).get("correlation_id", ""))


class CorrelationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-correlation-id"), None
        )
        cid = given if given is not None and _SANE.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["correlation_id"] = cid
        raw = cid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-correlation-id"]
                headers.append((b"x-correlation-id", raw))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
