"""The console's session cookie and the dependency every console route signs in through.

The cookie holds the random session id only: HttpOnly (no script reads it), SameSite=Strict (no
other site's page sends it), Secure when the request came over HTTPS, scoped to `/console`.
Every POST must carry the session's CSRF token, checked here before anything else runs; then
the key's scope, exactly as the API checks it.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from starlette.responses import Response

from engine.auth.keys import Scope
from engine.auth.sessions import ConsoleSession
from serve_app.deps import State

COOKIE = "paygrid_console"
COOKIE_PATH = "/console"


async def form_fields(request: Request) -> dict[str, str]:
    """A posted `application/x-www-form-urlencoded` body as fields (the last of a repeated
    name wins); anything else posts no fields."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    return dict(
        parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    )


Form = Annotated[dict[str, str], Depends(form_fields)]


def signed(scope: Scope | None) -> Any:
    """A dependency: the caller's live console session, its CSRF token checked on a POST, and
    `scope` required of its key (None: any signed-in key)."""

    async def dependency(request: Request, state: State, fields: Form) -> ConsoleSession:
        session = await state.console_sessions.resume(request.cookies.get(COOKIE))
        if request.method == "POST":
            session.check_csrf(fields.get("csrf_token"))
        if scope is not None:
            session.key.require(scope)
        return session

    return Depends(dependency)


Anyone = Annotated[ConsoleSession, signed(None)]
PaymentsReader = Annotated[ConsoleSession, signed(Scope.PAYMENTS_READ)]
PaymentsWriter = Annotated[ConsoleSession, signed(Scope.PAYMENTS_WRITE)]
WebhooksOperator = Annotated[ConsoleSession, signed(Scope.WEBHOOKS)]
Admin = Annotated[ConsoleSession, signed(Scope.ADMIN)]


def set_cookie(response: Response, request: Request, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
