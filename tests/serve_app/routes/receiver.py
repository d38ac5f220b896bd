"""A local webhook receiver (aiohttp on 127.0.0.1) and helpers for the webhook tests."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.factories import Api

DEADLINE_S = 20.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """An aiohttp server on 127.0.0.1: each path answers with the statuses queued for it, then
    with its default."""

    base_url: str = ""
    got: list[Received] = field(default_factory=list)
    script: dict[str, list[int]] = field(default_factory=dict)
    default: dict[str, int] = field(default_factory=dict)
    delay_s: dict[str, float] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        if path in self.delay_s:
            await asyncio.sleep(self.delay_s[path])
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.got.append(Received(path, headers, await request.read(), time.monotonic()))
        queued = self.script.get(path)
        status = queued.pop(0) if queued else self.default.get(path, 200)
        return web.Response(status=status, text=f"answer {status}")

    def at(self, path: str) -> list[Received]:
        return [r for r in self.got if r.path == path]


async def until(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Wait until `check()` (plain or async) holds, polling; fail naming `what` after the
    deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        held = check()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def create_endpoint(api: Api, url: str, events: list[str]) -> dict[str, Any]:
    response = await api.post("/api/webhooks/endpoints", {"url": url, "enabled_events": events})
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]
