"""Correlation ids, checked at the edge and carried through the request.

`X-Correlation-ID` is echoed when it is 1 to 128 visible ASCII characters; one that is merely
unusable (too long, or with spaces) is replaced by a fresh id; one holding control or non-ASCII
characters, which could forge log lines or headers downstream, is refused with 400
`invalid_correlation_id`. Absent, one is minted. The id is returned on every response and is
the current correlation (`engine.logs.context`) while the request runs, so every log line
written on its behalf carries it. Plain ASGI: a header scan and a context-variable set."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import InvalidRequest
from engine.logs.context import reset_correlation, set_correlation, valid_correlation_id
from serve_app import responses

HEADER = "x-correlation-id"
_UNSAFE = re.compile(r"[^\x20-\x7e]")


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
        cid = given if given is not None and valid_correlation_id(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["correlation_id"] = cid
        raw = cid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-correlation-id"]
                headers.append((b"x-correlation-id", raw))
                message["headers"] = headers
            await send(message)

        token = set_correlation(cid)
        try:
            if given is not None and _UNSAFE.search(given):
                refusal = InvalidRequest(
                    "X-Correlation-ID may hold only visible ASCII characters",
                    code="invalid_correlation_id",
                    param="X-Correlation-ID",
                )
                answer = responses.error(refusal.to_dict(), refusal.http_status, cid)
                await answer(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        finally:
            reset_correlation(token)
