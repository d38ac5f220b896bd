"""`ConsoleRoute` (no Ray): an error nobody expected still reaches the browser as a console
page, 500 with the correlation id to find its log line, never the API's JSON or a trace."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI

from serve_app.console.pages import ConsoleRoute
from serve_app.middleware import CorrelationMiddleware


async def test_an_unexpected_error_is_a_page_naming_its_correlation_id() -> None:
    router = APIRouter(route_class=ConsoleRoute)

    @router.get("/console/broken")
    async def broken() -> None:
        raise RuntimeError("secret detail")

    app = FastAPI()
    app.include_router(router)
    transport = httpx.ASGITransport(app=CorrelationMiddleware(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as http:
        shown = await http.get("/console/broken", headers={"X-Correlation-ID": "cid-broken-1"})
    assert shown.status_code == 500
    assert shown.headers["content-type"].startswith("text/html")
    assert "cid-broken-1" in shown.text
    assert "secret detail" not in shown.text
