"""Transport hardening in one pure ASGI middleware, so it costs the purchase path one wrapped
`send` and a scan of the request headers, and nothing else:

- a body larger than `max_body_bytes` is refused with 413 before it is read: at once when
  `Content-Length` says so, else (chunked) as soon as the bytes received pass the limit;
- a POST, PUT or PATCH with a body must be `Content-Type: application/json` (415 otherwise),
  except the operator console's HTML forms under `/console/`;
- every response carries `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY` and
  `Cache-Control: no-store`, and HSTS when it is served over TLS (to us, or to a trusted proxy
  that says so in `X-Forwarded-Proto`: the request's scheme becomes `https` for everything
  inside, the console's Secure cookies included);
- the `X-RateLimit-*` headers of the request's rate-limit decision (set by the auth
  dependency in the request's state), with `Retry-After` on a 429.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.ratelimit.limiter import Decision
from serve_app.client_ip import ClientAddress
from serve_app.middleware import correlation_id
from serve_app.responses import error

RATE_LIMIT_STATE = "rate_limit"
_WRITES = frozenset({"POST", "PUT", "PATCH"})
CONSOLE_PREFIX = "/console/"
_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


class BodyTooLarge(HTTPException):
    """The streamed body passed the limit. An HTTPException, so that FastAPI, which turns any
    other error raised while it reads a body into a 400, lets it through to the error handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


def rate_limit_headers(decision: Decision, status: int) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        (b"x-ratelimit-reset", str(decision.reset_s).encode()),
    ]
    if status == 429:
        headers.append((b"retry-after", str(decision.retry_after_s).encode()))
    return headers


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, clients: ClientAddress) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.clients = clients

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        scope["scheme"] = self.clients.scheme_of(scope)
        extra = [*_ALWAYS, _HSTS] if scope["scheme"] == "https" else _ALWAYS

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *extra]
                decision = state.get(RATE_LIMIT_STATE)
                if decision is not None:
                    headers += rate_limit_headers(decision, message["status"])
                message["headers"] = headers
            await send(message)

        if scope["method"] in _WRITES:
            refusal = self._refusal(scope)
            if refusal is not None:
                status, code, message = refusal
                body = {"type": "invalid_request_error", "code": code, "message": message}
                await error(body, status, correlation_id(scope))(scope, receive, secured_send)
                return
            if _header(scope, b"content-length") is None:
                receive = self._counting(receive)
        await self.app(scope, receive, secured_send)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        length_text = _header(scope, b"content-length")
        length = None
        if length_text is not None:
            if not length_text.isdigit():
                return 400, "invalid_content_length", "Content-Length is not a number"
            length = int(length_text)
            if length > self.max_body_bytes:
                return 413, "body_too_large", f"the body exceeds {self.max_body_bytes} bytes"
        if length is None:
            has_body = _header(scope, b"transfer-encoding") is not None
        else:
            has_body = length > 0
        media_type = (_header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
        if has_body and media_type != b"application/json" and not _console_form(scope, media_type):
            return 415, "unsupported_media_type", "send the body as Content-Type: application/json"
        return None

    def _counting(self, receive: Receive) -> Receive:
        received = 0
        limit = self.max_body_bytes

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        return counted


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _console_form(scope: Scope, media_type: bytes) -> bool:
    # The operator console's pages post HTML forms (each checked against its session's CSRF
    # token there); everything else paygrid serves takes JSON only.
    return media_type == b"application/x-www-form-urlencoded" and str(scope["path"]).startswith(
        CONSOLE_PREFIX
    )
