"""A local receiver for the engine's webhook tests: each path answers with its status."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Answers:
    base_url: str = ""
    status: dict[str, int] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        status = self.status.get(request.path, 200)
        return web.Response(status=status, text=f"answer {status}")
