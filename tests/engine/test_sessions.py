"""`engine/auth/sessions.py`: console sessions in real Redis over real API keys.

A session keeps no key, only its keyed hash; it ends on sign-out, after its idle time (a fake
clock, not sleeps; Redis's own expiry is set to the same time) and when its key is revoked;
its CSRF token is checked in constant time and refused when missing or wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from engine.auth.guard import AccessGuard
from engine.auth.keys import ApiKeyService, Scope
from engine.auth.models import Caller
from engine.auth.sessions import ConsoleSession, SessionService
from engine.db.database import Database
from engine.errors import AuthenticationFailed, PermissionDenied
from engine.ratelimit.limiter import Decision, RateLimiter
from engine.ratelimit.limits import PROFILES

IDLE_S = 600.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(infra: dict[str, str]) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra["redis_url"])
    yield client
    await client.aclose()


@pytest.fixture
def keys(database: Database) -> ApiKeyService:
    return ApiKeyService(database, secret=b"s" * 32, cache_ttl_s=0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sessions(redis: Redis, keys: ApiKeyService, clock: FakeClock) -> SessionService:
    guard = AccessGuard(keys, RateLimiter(redis), PROFILES["default"])
    return SessionService(redis, guard, idle_s=IDLE_S, clock=clock)


# The guard's own checks (allow-lists, audit, buckets) are tested in tests/engine/auth and,
# through the console, in tests/serve_app/console/test_access.py.
CALLER = Caller("192.0.2.1", "GET", "/console", "cid-sessions")


def _ignore(_: Decision) -> None:
    return None


async def _sign_in(sessions: SessionService, secret: str) -> tuple[str, ConsoleSession]:
    return await sessions.sign_in(secret, CALLER, _ignore)


async def _resume(sessions: SessionService, session_id: str | None) -> ConsoleSession:
    return await sessions.resume(session_id, None, CALLER, _ignore)


def _stored(session_id: str) -> str:
    return "paygrid:console:session:" + hashlib.sha256(session_id.encode()).hexdigest()


async def test_a_session_holds_the_key_hash_not_the_key(
    sessions: SessionService, keys: ApiKeyService, redis: Redis
) -> None:
    key, secret = await keys.create(name="ops", scopes=frozenset({Scope.PAYMENTS_READ}))
    session_id, session = await _sign_in(sessions, secret)
    assert session.key.id == key.id
    raw = await redis.get(_stored(session_id))
    assert raw is not None
    assert secret.encode() not in raw
    assert session_id.encode() not in raw
    assert 0 < await redis.pttl(_stored(session_id)) <= IDLE_S * 1000
    resumed = await _resume(sessions, session_id)
    assert resumed.key.id == key.id
    assert resumed.key.scopes == frozenset({Scope.PAYMENTS_READ})
    assert resumed.csrf_token == session.csrf_token


async def test_a_wrong_key_gets_no_session(sessions: SessionService) -> None:
    with pytest.raises(AuthenticationFailed):
        await _sign_in(sessions, "pgk_not-a-key")


async def test_sign_out_ends_the_session(sessions: SessionService, keys: ApiKeyService) -> None:
    _, secret = await keys.create(name="ops", scopes=frozenset({Scope.ADMIN}))
    session_id, _ = await _sign_in(sessions, secret)
    await sessions.sign_out(session_id)
    with pytest.raises(AuthenticationFailed):
        await _resume(sessions, session_id)
    with pytest.raises(AuthenticationFailed):
        await _resume(sessions, None)


async def test_idle_expiry_and_activity_keeps_it_alive(
    sessions: SessionService, keys: ApiKeyService, clock: FakeClock, redis: Redis
) -> None:
    _, secret = await keys.create(name="ops", scopes=frozenset({Scope.ADMIN}))
    session_id, _ = await _sign_in(sessions, secret)
    # Used just inside the idle time, twice: each use restarts it.
    clock.now += IDLE_S - 1
    await _resume(sessions, session_id)
    clock.now += IDLE_S - 1
    await _resume(sessions, session_id)
    clock.now += IDLE_S + 1
    with pytest.raises(AuthenticationFailed, match="idle"):
        await _resume(sessions, session_id)
    assert await redis.exists(_stored(session_id)) == 0


async def test_a_revoked_key_ends_its_sessions(
    sessions: SessionService, keys: ApiKeyService, redis: Redis
) -> None:
    key, secret = await keys.create(name="ops", scopes=frozenset({Scope.ADMIN}))
    session_id, _ = await _sign_in(sessions, secret)
    await keys.revoke(key.id)
    with pytest.raises(AuthenticationFailed):
        await _resume(sessions, session_id)
    assert await redis.exists(_stored(session_id)) == 0


async def test_csrf_token_must_match(sessions: SessionService, keys: ApiKeyService) -> None:
    _, secret = await keys.create(name="ops", scopes=frozenset({Scope.ADMIN}))
    _, session = await _sign_in(sessions, secret)
    session.check_csrf(session.csrf_token)
    for wrong in (None, "", session.csrf_token[:-1] + "x"):
        with pytest.raises(PermissionDenied):
            session.check_csrf(wrong)
