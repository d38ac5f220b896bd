"""Fixtures of the API tests: the local webhook receiver, shared by the webhook and queue
tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.local_server import serving
from tests.serve_app.routes.receiver import Receiver


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    async with serving(recv.handle) as url:
        recv.base_url = url
        yield recv
