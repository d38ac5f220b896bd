"""Signing in with an API key, signing out, and the console's front door."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from serve_app.console.pages import ConsoleRoute, permissions, sign_in_page
from serve_app.console.session import (
    COOKIE,
    Anyone,
    Form,
    check_login_token,
    clear_cookie,
    clear_login_cookie,
    set_cookie,
)
from serve_app.deps import State, caller_of, rate_limit_report

router = APIRouter(route_class=ConsoleRoute)


@router.get("")
async def front_door(session: Anyone) -> Response:
    """The first page the key may see."""
    can = permissions(session)
    pages = [
        ("payments_read", "payments"),
        ("webhooks", "webhooks"),
        ("customers", "customers"),
        ("subscriptions", "subscriptions"),
    ]
    target = next((path for scope, path in pages if can[scope]), "queues")
    return RedirectResponse(f"/console/{target}", status_code=303)


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    return await sign_in_page(request)


@router.post("/sign-in")
async def sign_in(request: Request, state: State, fields: Form) -> Response:
    """A session for a live API key, once the form's login token and origin check out and
    the API's guard admits the key from this address (a refusal audited and limited per
    address as the API's are); the key itself goes no further than this request."""
    check_login_token(request, fields)
    session_id, _ = await state.console_sessions.sign_in(
        fields.get("api_key", "").strip(), caller_of(request, state), rate_limit_report(request)
    )
    response = RedirectResponse("/console", status_code=303)
    secure = state.clients.over_tls(request.scope)
    set_cookie(response, session_id, secure=secure)
    clear_login_cookie(response, secure=secure)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: Anyone, state: State) -> Response:
    await state.console_sessions.sign_out(request.cookies.get(COOKIE))
    response = RedirectResponse("/console/sign-in", status_code=303)
    clear_cookie(response, secure=state.clients.over_tls(request.scope))
    return response
