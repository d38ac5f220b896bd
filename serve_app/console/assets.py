"""The console's stylesheet and script, served by paygrid itself (no CDN, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from engine.errors import NotFound
from serve_app.console.pages import ConsoleRoute

router = APIRouter(route_class=ConsoleRoute)

STATIC = Path(__file__).parent / "static"
# Only these names are served: a request never reaches a path it builds itself.
ASSETS = {"console.css": "text/css", "console.js": "text/javascript"}


@router.get("/static/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound("no such console asset", param="name")
    return FileResponse(
        STATIC / name,
        media_type=ASSETS[name],
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )
