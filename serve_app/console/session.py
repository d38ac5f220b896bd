"""The console's session cookie and the dependency every console route signs in through.

The cookie holds the random session id only: HttpOnly (no script reads it), SameSite=Strict (no
other site's page sends it), Secure when the client came over TLS (directly or through a trusted
proxy), scoped to `/console`. Every POST is refused (403) when the browser says it comes from
another origin (`Origin`, or `Sec-Fetch-Site: cross-site`) and must carry the session's CSRF
token, checked here once the session's key has passed the API's guard (allow-list, scope, rate
limit, exactly as an API request with the key).

Signing in has no session yet, so its form carries a login token instead (double submit): the
sign-in page sets it in its own short-lived Strict cookie and in a hidden field, and the POST
must bring both, equal. Another site can neither read the field nor make the browser send the
cookie, so it cannot sign a victim in to the attacker's key (login CSRF).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import Depends, Request
from starlette.responses import Response

from engine.auth.keys import Scope
from engine.auth.sessions import ConsoleSession
from engine.errors import PermissionDenied
from serve_app.deps import State, caller_of, rate_limit_report

COOKIE = "paygrid_console"
COOKIE_PATH = "/console"
LOGIN_COOKIE = "paygrid_console_login"
LOGIN_PATH = "/console/sign-in"
# Long enough to type a key; the sign-in page sets a new one each time it is shown.
LOGIN_TOKEN_S = 3600


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
    """A dependency: the caller's live console session, its key through the API's guard for
    `scope` (None: any signed-in key): allow-list, scope and rate limit; then its CSRF token
    checked on a POST."""

    async def dependency(request: Request, state: State, fields: Form) -> ConsoleSession:
        session = await state.console_sessions.resume(
            request.cookies.get(COOKIE),
            scope,
            caller_of(request, state),
            rate_limit_report(request),
        )
        if request.method == "POST":
            check_origin(request)
            session.check_csrf(fields.get("csrf_token"))
        return session

    return Depends(dependency)


def check_origin(request: Request) -> None:
    """PermissionDenied when the browser says the form was posted from another origin: an
    `Origin` other than this host (or `null`, an opaque origin), or `Sec-Fetch-Site:
    cross-site`. A client that sends neither (no browser) has no victim to forge for."""
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        raise PermissionDenied("the form was posted from another site", code="csrf_failed")
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
        raise PermissionDenied("the form was posted from another origin", code="csrf_failed")


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def check_login_token(request: Request, fields: dict[str, str]) -> None:
    """PermissionDenied unless the sign-in form's token equals its cookie's (and the origin
    is ours)."""
    check_origin(request)
    cookie = request.cookies.get(LOGIN_COOKIE)
    field = fields.get("login_token")
    if not cookie or not field or not hmac.compare_digest(cookie, field):
        raise PermissionDenied(
            "the sign-in form expired or came from elsewhere; sign in again", code="csrf_failed"
        )


Anyone = Annotated[ConsoleSession, signed(None)]
PaymentsReader = Annotated[ConsoleSession, signed(Scope.PAYMENTS_READ)]
PaymentsWriter = Annotated[ConsoleSession, signed(Scope.PAYMENTS_WRITE)]
WebhooksOperator = Annotated[ConsoleSession, signed(Scope.WEBHOOKS)]
CustomersOperator = Annotated[ConsoleSession, signed(Scope.CUSTOMERS)]
SubscriptionsOperator = Annotated[ConsoleSession, signed(Scope.SUBSCRIPTIONS)]
Admin = Annotated[ConsoleSession, signed(Scope.ADMIN)]


def set_cookie(response: Response, session_id: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE, session_id, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure
    )


def clear_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure
    )


def set_login_cookie(response: Response, token: str, *, secure: bool) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_TOKEN_S,
        path=LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def clear_login_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(
        LOGIN_COOKIE, path=LOGIN_PATH, httponly=True, samesite="strict", secure=secure
    )
