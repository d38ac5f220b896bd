"""Signing in with an API key, signing out, and the console's front door."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from serve_app.console.pages import ConsoleRoute, permissions, render
from serve_app.console.session import COOKIE, Anyone, Form, clear_cookie, set_cookie
from serve_app.deps import State

router = APIRouter(route_class=ConsoleRoute)


@router.get("")
async def front_door(session: Anyone) -> Response:
    """The first page the key may see."""
    can = permissions(session)
    target = "payments" if can["payments_read"] else "webhooks" if can["webhooks"] else "queues"
    return RedirectResponse(f"/console/{target}", status_code=303)


@router.get("/sign-in")
async def sign_in_form() -> Response:
    return render("sign_in.html", message=None)


@router.post("/sign-in")
async def sign_in(request: Request, state: State, fields: Form) -> Response:
    """A session for a live API key; the key itself goes no further than this request."""
    session_id, _ = await state.console_sessions.sign_in(fields.get("api_key", "").strip())
    response = RedirectResponse("/console", status_code=303)
    set_cookie(response, request, session_id)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: Anyone, state: State) -> Response:
    await state.console_sessions.sign_out(request.cookies.get(COOKIE))
    response = RedirectResponse("/console/sign-in", status_code=303)
    clear_cookie(response, request)
    return response
