"""Fixtures of the engine's webhook tests: a local receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.engine.webhooks.receiver import Answers
from tests.local_server import serving


@pytest.fixture
async def answers() -> AsyncIterator[Answers]:
    recv = Answers()
    async with serving(recv.handle) as url:
        recv.base_url = url
        yield recv
