"""Rendering console pages: the Jinja2 environment, its filters (money from minor units, times
in UTC), the security headers every page carries, and the route class that turns errors into
pages.

Errors reach the browser as pages, not as the API's JSON envelope: `ConsoleRoute` catches what
the API's one handler would (paygrid errors, validation errors) for console routes only, and
renders them with the same status codes (anything unexpected: 500, logged, the page naming the
correlation id); a missing, ended or revoked session shows the sign-in
form with 401.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from engine.auth.keys import Scope
from engine.auth.sessions import ConsoleSession
from engine.errors import AuthenticationFailed, PaygridError
from engine.money import Money
from serve_app.console.session import new_login_token, set_login_cookie
from serve_app.deps import get_state
from serve_app.errors import validation_body
from serve_app.middleware import correlation_id

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"

# Every asset is ours: no inline script, no third-party origin, no framing. `nosniff` and
# `Cache-Control: no-store` come with every response of the app (serve_app/security.py), so
# they are not repeated here.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
}


def money(amount: int, currency: str) -> str:
    """Minor units in the currency's own form: 1250 USD → "12.50 USD", 1250 JPY → "1250 JPY"."""
    return Money(amount, currency).format()


def when(moment: datetime | str | None) -> Markup:
    """A `<time>` in UTC (from a datetime, or the ISO text of an API object); console.js adds
    the browser's local time as its title."""
    if moment is None:
        return Markup("—")
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    utc = moment.astimezone(UTC)
    return Markup('<time datetime="{}">{} UTC</time>').format(
        utc.isoformat().replace("+00:00", "Z"), utc.strftime("%Y-%m-%d %H:%M:%S")
    )


def minute(start_s: int) -> Markup:
    """A minute given in Unix seconds, as `when` shows a time."""
    return when(datetime.fromtimestamp(start_s, UTC))


@functools.cache
def environment() -> Environment:
    """The template environment, built on first use (not at import) and then shared: it only
    reads the package's own template files, and caches them compiled."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["when"] = when
    env.filters["minute"] = minute
    return env


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """`template` rendered with `context`, with the console's security headers."""
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def permissions(session: ConsoleSession) -> dict[str, bool]:
    """What a page may show and offer, by the key's scopes exactly as the API decides (admin
    holds every scope, payments:write implies payments:read)."""
    key = session.key
    return {
        "payments_read": key.allows(Scope.PAYMENTS_READ),
        "payments_write": key.allows(Scope.PAYMENTS_WRITE),
        "webhooks": key.allows(Scope.WEBHOOKS),
        "customers": key.allows(Scope.CUSTOMERS),
        "subscriptions": key.allows(Scope.SUBSCRIPTIONS),
        "admin": key.allows(Scope.ADMIN),
    }


def page(
    session: ConsoleSession, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A signed-in page: what the key may do, its name and the session's CSRF token (every
    form carries it) join `context`."""
    return render(
        template,
        status_code,
        can=permissions(session),
        key_name=session.key.name,
        csrf_token=session.csrf_token,
        **context,
    )


async def sign_in_page(
    request: Request, status_code: int = 200, message: str | None = None
) -> HTMLResponse:
    """The sign-in form with a new login token, in its field and in its cookie."""
    token = new_login_token()
    response = render("sign_in.html", status_code, message=message, login_token=token)
    secure = (await get_state(request)).clients.over_tls(request.scope)
    set_login_cookie(response, token, secure=secure)
    return response


def error_page(status_code: int, message: str) -> HTMLResponse:
    return render("error.html", status_code, message=message, code=status_code)


def _validation_message(exc: RequestValidationError | ValidationError) -> str:
    if isinstance(exc, RequestValidationError):
        return str(validation_body(exc)["message"])
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()))
    text = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{field}: {text}" if field else text


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class ConsoleRoute(APIRoute):
    """A console route: its errors become pages (never echoing the rejected input)."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except AuthenticationFailed as exc:
                return await sign_in_page(request, 401, exc.message)
            except PaygridError as exc:
                return error_page(exc.http_status, exc.message)
            except (RequestValidationError, ValidationError) as exc:
                return error_page(400, _validation_message(exc))
            except Exception:
                # A list that cannot be read (the database away, a bug) is an error page
                # too, with the id that finds its log line, never the API's JSON.
                cid = correlation_id(request.scope)
                log.exception("console error on %s %s", request.method, request.url.path)
                return error_page(500, f"Something went wrong; the log has it under {cid}.")

        return guarded
