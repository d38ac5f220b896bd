"""`engine/auth/invalidation.py`: a key revoked or rotated on one replica is refused on another
within a second, though that replica's cache would have kept it for a minute."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from redis.asyncio import Redis

from engine.auth.invalidation import KeyChanges
from engine.auth.keys import ApiKeyService
from engine.auth.models import AuthFailure, Scope
from engine.db.database import Database
from tests.waiting import wait_until

SECRET = b"invalidation-test-secret-0123"
WRITE = frozenset({Scope.PAYMENTS_WRITE})


@pytest.fixture
async def replicas(
    pool: asyncpg.Pool, infra: dict[str, str]
) -> AsyncIterator[Callable[[], Awaitable[ApiKeyService]]]:
    """Replicas of the key service: each with its own Redis client and listener, and a cache
    TTL of a minute, so only an announcement can make them forget within the test."""
    clients: list[Redis] = []
    listeners: list[asyncio.Task[None]] = []

    async def replica() -> ApiKeyService:
        redis = Redis.from_url(infra["redis_url"])
        clients.append(redis)
        changes = KeyChanges(redis)
        service = ApiKeyService(Database(pool), secret=SECRET, cache_ttl_s=60, changes=changes)
        ready = asyncio.Event()
        listeners.append(
            asyncio.get_running_loop().create_task(changes.listen(service.forget, ready))
        )
        # An announcement reaches only listeners already subscribed, as a replica is once up.
        await asyncio.wait_for(ready.wait(), 5)
        return service

    try:
        yield replica
    finally:
        for task in listeners:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in clients:
            await client.aclose()


async def test_a_revocation_reaches_another_replica_within_a_second(
    replicas: Callable[[], Awaitable[ApiKeyService]],
) -> None:
    first, second = await replicas(), await replicas()
    key, secret = await first.create(name="leaked", scopes=WRITE)
    assert (await second.authenticate(secret)).id == key.id  # cached on the second for 60 s
    await first.revoke(key.id)
    loop = asyncio.get_running_loop()
    revoked_at = loop.time()

    async def refused() -> bool:
        return (await second.identify(secret)).failure is AuthFailure.REVOKED

    await wait_until(refused, timeout_s=1.0, what="the second replica to refuse the key")
    assert loop.time() - revoked_at < 1.0


async def test_a_rotation_with_no_grace_reaches_another_replica(
    replicas: Callable[[], Awaitable[ApiKeyService]],
) -> None:
    first, second = await replicas(), await replicas()
    key, old = await first.create(name="rotated", scopes=WRITE)
    await second.authenticate(old)
    _, new = await first.rotate(key.id, grace_s=0)

    async def refused() -> bool:
        return (await second.identify(old)).failure is AuthFailure.ROTATED_OUT

    await wait_until(refused, timeout_s=1.0, what="the second replica to refuse the old secret")
    assert (await second.authenticate(new)).id == key.id
