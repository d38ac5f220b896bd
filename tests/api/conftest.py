"""Fixtures of the API tests: the local webhook receiver, shared by the webhook and queue
tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.api.receiver import Receiver


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", recv.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    recv.base_url = f"http://127.0.0.1:{port}"
    yield recv
    await runner.cleanup()
