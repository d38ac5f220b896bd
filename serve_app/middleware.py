"""Correlation ids, checked at the edge and carried through the request.

`X-Correlation-ID` is echoed when it is 1 to 128 visible ASCII characters; one that is merely
unusable (too long, or with spaces) is replaced by a fresh id; one holding control or non-ASCII
characters, which could forge log lines or headers downstream, or holding what the log
scrubber masks (a card number, a CVC, a key or a secret: the id is stored on every row the
request writes, where nothing scrubs it), is refused with 400 `invalid_correlation_id`.
Absent, one is minted. The id is returned on every response and is the current correlation
(`engine.logs.context`) while the request runs, so every log line written on its behalf
carries it. Plain ASGI: a header scan and a context-variable set."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import InvalidRequest
from engine.logs.context import reset_correlation, set_correlation, valid_correlation_id
from engine.logs.scrubber import scrub
from serve_app import responses

HEADER = "x-correlation-id"
_UNSAFE = re.compile(r"[^\x20-\x7e]")


def correlation_id(scope: Scope) -> str:
    """The request's correlation id, as set by the middleware."""
    return str(scope.get("state", {}).get("correlation_id", ""))


def _refusal(given: str) -> str | None:
    """Why a given correlation id is refused outright, if it is."""
    if _UNSAFE.search(given):
        return "X-Correlation-ID may hold only visible ASCII characters"
    if scrub(given) != given:
        return "X-Correlation-ID must not hold a card number, a CVC, a key or a secret"
    return None


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
        refused = None if given is None else _refusal(given)
        usable = given is not None and not refused and valid_correlation_id(given)
        cid = given if usable and given is not None else uuid.uuid4().hex
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
            if refused:
                refusal = InvalidRequest(
                    refused, code="invalid_correlation_id", param="X-Correlation-ID"
                )
                answer = responses.error(refusal.to_dict(), refusal.http_status, cid)
                await answer(scope, receive, send_with_id)
                return
            await self.app(scope, receive, send_with_id)
        finally:
            reset_correlation(token)
