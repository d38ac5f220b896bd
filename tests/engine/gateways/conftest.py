"""Fixtures of the gateway tests: a client of the session's real Redis, where the sandbox keeps
its records."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis


@pytest.fixture
async def redis(infra: dict[str, str]) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra["redis_url"])
    try:
        yield client
    finally:
        await client.aclose()
