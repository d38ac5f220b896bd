"""`engine/auth/guard.py` against real PostgreSQL and Redis: who gets in, what is audited when
they do not (never the secret), the per-key and per-address buckets, per-key limits, and Redis
down failing open for payments and closed for admin."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from uuid import uuid4

import asyncpg
import pytest
from redis.asyncio import Redis

from engine.auth.guard import AccessGuard
from engine.auth.keys import ApiKeyService
from engine.auth.models import AuthFailure, Caller, Scope
from engine.db.database import Database
from engine.errors import AuthenticationFailed, PermissionDenied, RateLimited, UpstreamError
from engine.ratelimit.limiter import Decision, RateLimiter
from engine.ratelimit.limits import PROFILES, UNLIMITED, Profile, Rate, parse_rate

SECRET = b"guard-test-secret-0123456789"
WRITE = frozenset({Scope.PAYMENTS_WRITE})
# Small per-address bucket, so the test reaches its end quickly.
PROFILE = Profile(
    standard=Rate(100, 1, 200),
    payments=Rate(100, 1, 200),
    admin=Rate(10, 1, 20),
    unauthenticated=Rate(1, 3600, 3),
)


@pytest.fixture
def keys(pool: asyncpg.Pool) -> ApiKeyService:
    return ApiKeyService(Database(pool), secret=SECRET, cache_ttl_s=0)


@pytest.fixture
def guard(keys: ApiKeyService, redis: Redis) -> AccessGuard:
    return AccessGuard(keys, RateLimiter(redis), PROFILE)


def caller(ip: str | None = None) -> Caller:
    # A fresh address per test: the per-address buckets live in the shared Redis. Written in
    # its canonical form (no leading zeros), as PostgreSQL's inet gives it back.
    fresh = str(ip_address(f"2001:db8::{uuid4().hex[:4]}:{uuid4().hex[:4]}"))
    return Caller(ip or fresh, "GET", "/api/payments", "cid-1")


class Reports(list[Decision]):
    def __call__(self, decision: Decision) -> None:
        self.append(decision)


async def failures(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch("SELECT * FROM auth_failures ORDER BY created_at")
    return rows


async def test_the_right_key_gets_in_with_its_bucket_reported(
    guard: AccessGuard, keys: ApiKeyService
) -> None:
    key, secret = await keys.create(name="ok", scopes=WRITE)
    reports = Reports()
    assert (await guard.admit(secret, Scope.PAYMENTS_WRITE, caller(), reports)).id == key.id
    assert [(r.allowed, r.limit, r.remaining) for r in reports] == [(True, 200, 199)]
    # payments:read draws from the standard bucket, apart from the payments one.
    await guard.admit(secret, Scope.PAYMENTS_READ, caller(), reports)
    assert reports[-1].remaining == 199


async def test_an_unlimited_key_is_never_counted(guard: AccessGuard, keys: ApiKeyService) -> None:
    _, secret = await keys.create(name="bench", scopes=WRITE, rate_limit=UNLIMITED)
    reports = Reports()
    for _ in range(250):
        await guard.admit(secret, Scope.PAYMENTS_WRITE, caller(), reports)
    assert reports == []


async def test_one_key_over_its_limit_leaves_another_alone(
    guard: AccessGuard, keys: ApiKeyService
) -> None:
    _, noisy = await keys.create(name="noisy", scopes=WRITE, rate_limit=parse_rate("5/h"))
    _, quiet = await keys.create(name="quiet", scopes=WRITE, rate_limit=parse_rate("5/h"))
    reports = Reports()
    for _ in range(5):
        await guard.admit(noisy, Scope.PAYMENTS_WRITE, caller(), reports)
    for _ in range(50):
        with pytest.raises(RateLimited):
            await guard.admit(noisy, Scope.PAYMENTS_WRITE, caller(), reports)
    assert reports[-1].retry_after_s > 0
    await guard.admit(quiet, Scope.PAYMENTS_WRITE, caller(), reports)
    assert reports[-1].allowed


async def test_admin_routes_keep_the_admin_tier_unless_unlimited(
    guard: AccessGuard, keys: ApiKeyService
) -> None:
    admin = frozenset({Scope.ADMIN})
    _, big = await keys.create(name="big", scopes=admin, rate_limit=parse_rate("5000/s"))
    _, free = await keys.create(name="free", scopes=admin, rate_limit=UNLIMITED)
    reports = Reports()
    await guard.admit(big, Scope.ADMIN, caller(), reports)
    assert reports[-1].limit == 20
    await guard.admit(big, Scope.PAYMENTS_WRITE, caller(), reports)
    assert reports[-1].limit == 10_000
    count = len(reports)
    await guard.admit(free, Scope.ADMIN, caller(), reports)
    assert len(reports) == count


@pytest.mark.parametrize("presented", [None, "", "pgk_notakeyatall", "garbage"])
async def test_missing_and_unknown_keys_are_refused_and_audited(
    guard: AccessGuard, pool: asyncpg.Pool, presented: str | None
) -> None:
    knocking = caller()
    with pytest.raises(AuthenticationFailed):
        await guard.admit(presented, Scope.PAYMENTS_READ, knocking, Reports())
    [row] = await failures(pool)
    assert row["reason"] == ("missing" if not presented else "unknown")
    assert row["api_key_id"] is None
    assert row["key_prefix"] == ("pgk_notake" if presented == "pgk_notakeyatall" else None)
    assert (str(row["client_ip"]), row["method"], row["path"]) == (
        knocking.ip,
        "GET",
        "/api/payments",
    )


async def test_revoked_expired_and_wrong_address_name_the_key_never_the_secret(
    guard: AccessGuard, keys: ApiKeyService, pool: asyncpg.Pool
) -> None:
    revoked, revoked_secret = await keys.create(name="revoked", scopes=WRITE)
    await keys.revoke(revoked.id)
    expired, expired_secret = await keys.create(name="expired", scopes=WRITE, expires_in_days=1)
    await pool.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", expired.id
    )
    fenced, fenced_secret = await keys.create(
        name="fenced", scopes=WRITE, allowed_networks=(ip_network("10.20.0.0/16"),)
    )
    for secret in (revoked_secret, expired_secret):
        with pytest.raises(AuthenticationFailed):
            await guard.admit(secret, Scope.PAYMENTS_WRITE, caller(), Reports())
    with pytest.raises(PermissionDenied) as wrong_ip:
        await guard.admit(fenced_secret, Scope.PAYMENTS_WRITE, caller("10.21.0.1"), Reports())
    assert wrong_ip.value.code == "ip_not_allowed"
    assert (
        await guard.admit(fenced_secret, Scope.PAYMENTS_WRITE, caller("10.20.3.4"), Reports())
    ).id == fenced.id

    rows = await failures(pool)
    assert [(r["reason"], r["api_key_id"], r["key_prefix"]) for r in rows] == [
        (AuthFailure.REVOKED, revoked.id, None),
        (AuthFailure.EXPIRED, expired.id, None),
        (AuthFailure.IP_NOT_ALLOWED, fenced.id, None),
    ]
    dumped = await pool.fetchval("SELECT string_agg(f::text, ' ') FROM auth_failures f")
    for secret in (revoked_secret, expired_secret, fenced_secret):
        assert secret not in dumped
        assert secret[10:20] not in dumped


async def test_failed_authentications_are_limited_per_address(
    guard: AccessGuard, keys: ApiKeyService, pool: asyncpg.Pool
) -> None:
    attacker, other = caller(), caller()
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await guard.admit("pgk_guess", Scope.PAYMENTS_READ, attacker, Reports())
    reports = Reports()
    with pytest.raises(RateLimited):
        await guard.admit("pgk_guess", Scope.PAYMENTS_READ, attacker, reports)
    assert not reports[-1].allowed
    assert len(await failures(pool)) == 3, "throttled attempts are not written"
    with pytest.raises(AuthenticationFailed):
        await guard.admit("pgk_guess", Scope.PAYMENTS_READ, other, Reports())
    # A real key from the throttled address still works: only failures draw from its bucket.
    _, secret = await keys.create(name="legit", scopes=WRITE)
    await guard.admit(secret, Scope.PAYMENTS_WRITE, attacker, Reports())


async def test_redis_down_fails_open_for_payments_and_closed_for_admin(
    keys: ApiKeyService,
) -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        guard = AccessGuard(keys, RateLimiter(down), PROFILES["default"])
        _, secret = await keys.create(name="ops", scopes=frozenset({Scope.ADMIN}))
        reports = Reports()
        await guard.admit(secret, Scope.PAYMENTS_WRITE, caller(), reports)
        await guard.admit(secret, Scope.CUSTOMERS, caller(), reports)
        with pytest.raises(UpstreamError) as closed:
            await guard.admit(secret, Scope.ADMIN, caller(), reports)
        assert closed.value.code == "rate_limiter_unavailable"
        assert reports == []
    finally:
        await down.aclose()


async def test_the_scope_is_still_required(guard: AccessGuard, keys: ApiKeyService) -> None:
    _, reader = await keys.create(name="reader", scopes=frozenset({Scope.PAYMENTS_READ}))
    with pytest.raises(PermissionDenied) as denied:
        await guard.admit(reader, Scope.PAYMENTS_WRITE, caller(), Reports())
    assert denied.value.code == "insufficient_scope"
