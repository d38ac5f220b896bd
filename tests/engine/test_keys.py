"""`engine/auth/keys.py`: API keys are random secrets stored only as keyed hashes.

Against a freshly migrated database: the secret never reaches a table, authentication refuses
wrong, revoked and expired keys, the per-process cache honours its TTL (driven by a fake clock,
not sleeps), and scopes imply each other only as documented.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from typing import cast
from uuid import uuid4

import asyncpg
import pytest

from engine.auth.keys import KEY_PREFIX, ApiKey, ApiKeyService, Scope, parse_scopes
from engine.auth.models import AuthFailure
from engine.db.database import Database
from engine.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    StateError,
)
from engine.ratelimit.limits import parse_rate
from tests.waiting import wait_until

SECRET = secrets.token_bytes(32)
WRITE = frozenset({Scope.PAYMENTS_WRITE})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key_service(pool: asyncpg.Pool) -> ApiKeyService:
    return ApiKeyService(Database(pool), secret=SECRET, cache_ttl_s=0)


def api_key(*scopes: Scope) -> ApiKey:
    return ApiKey(uuid4(), "k", "pgk_abcdef", frozenset(scopes), datetime.now(UTC), None, None)


async def test_create_returns_a_secret_that_is_never_stored(
    key_service: ApiKeyService, pool: asyncpg.Pool
) -> None:
    key, secret = await key_service.create(name="ci", scopes=WRITE)
    assert secret.startswith(KEY_PREFIX)
    assert len(secret) >= len(KEY_PREFIX) + 40
    assert key.prefix == secret[:10]
    assert (key.name, key.scopes, key.revoked_at, key.expires_at) == ("ci", WRITE, None, None)

    stored = await pool.fetchval("SELECT key_hash FROM api_keys WHERE id = $1", key.id)
    assert stored == hmac.new(SECRET, secret.encode(), hashlib.sha256).digest()
    tables = await pool.fetchval(
        """SELECT (SELECT string_agg(k::text, ' ') FROM api_keys k)
               || (SELECT string_agg(a::text, ' ') FROM audit_logs a)"""
    )
    assert secret not in tables
    assert secret[len(KEY_PREFIX) :] not in tables


async def test_each_key_is_distinct(key_service: ApiKeyService) -> None:
    (first, one), (second, two) = [
        await key_service.create(name="twin", scopes=WRITE) for _ in range(2)
    ]
    assert one != two
    assert first.id != second.id


async def test_authenticate_returns_the_key(key_service: ApiKeyService) -> None:
    key, secret = await key_service.create(name="ok", scopes=WRITE, expires_in_days=1)
    assert key.expires_at is not None
    assert key.expires_at - key.created_at == timedelta(days=1)
    assert await key_service.authenticate(secret) == key


@pytest.mark.parametrize("presented", [None, ""])
async def test_missing_key_is_refused(key_service: ApiKeyService, presented: str | None) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        await key_service.authenticate(presented)
    assert caught.value.code == "missing_api_key"
    assert caught.value.http_status == 401


async def test_wrong_key_is_refused(key_service: ApiKeyService, pool: asyncpg.Pool) -> None:
    _, secret = await key_service.create(name="real", scopes=WRITE)
    for wrong in (secret + "x", secret[:-1], KEY_PREFIX + secrets.token_urlsafe(32)):
        with pytest.raises(AuthenticationFailed) as caught:
            await key_service.authenticate(wrong)
        assert caught.value.code == "invalid_api_key"
    other_secret = ApiKeyService(Database(pool), secret=secrets.token_bytes(32), cache_ttl_s=0)
    with pytest.raises(AuthenticationFailed):
        await other_secret.authenticate(secret)


async def test_revoked_key_is_refused(key_service: ApiKeyService) -> None:
    key, secret = await key_service.create(name="gone", scopes=WRITE)
    await key_service.authenticate(secret)
    revoked = await key_service.revoke(key.id)
    assert revoked.revoked_at is not None
    with pytest.raises(AuthenticationFailed):
        await key_service.authenticate(secret)
    again = await key_service.revoke(key.id)
    assert again.revoked_at == revoked.revoked_at, "revoking twice keeps the first time"


async def test_revoking_an_unknown_key_is_not_found(key_service: ApiKeyService) -> None:
    with pytest.raises(NotFound) as caught:
        await key_service.revoke(uuid4())
    assert caught.value.param == "id"


async def test_expired_key_is_refused(key_service: ApiKeyService, pool: asyncpg.Pool) -> None:
    key, secret = await key_service.create(name="old", scopes=WRITE, expires_in_days=30)
    await key_service.authenticate(secret)
    await pool.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", key.id
    )
    with pytest.raises(AuthenticationFailed):
        await key_service.authenticate(secret)


async def test_cache_serves_within_ttl_and_revoke_clears_it(pool: asyncpg.Pool) -> None:
    clock = FakeClock()
    cached = ApiKeyService(Database(pool), secret=SECRET, cache_ttl_s=5, clock=clock)
    other_process = ApiKeyService(Database(pool), secret=SECRET, cache_ttl_s=5, clock=clock)
    key, secret = await cached.create(name="cached", scopes=WRITE)
    await cached.authenticate(secret)

    await other_process.revoke(key.id)
    assert await cached.authenticate(secret) == key, "within the TTL the cached key still works"
    clock.now += 5.001
    with pytest.raises(AuthenticationFailed):
        await cached.authenticate(secret)

    fresh_key, fresh_secret = await cached.create(name="local", scopes=WRITE)
    await cached.authenticate(fresh_secret)
    await cached.revoke(fresh_key.id)
    with pytest.raises(AuthenticationFailed):
        await cached.authenticate(fresh_secret)


@pytest.mark.parametrize(
    ("name", "days", "param"),
    [("", None, "name"), ("x" * 101, None, "name"), ("ok", 0, "expires_in_days")],
)
async def test_create_validates_its_input(
    key_service: ApiKeyService, name: str, days: int | None, param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await key_service.create(name=name, scopes=WRITE, expires_in_days=days)
    assert caught.value.param == param


def test_secret_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        ApiKeyService(cast(Database, object()), secret=b"fifteen bytes!!")


@pytest.mark.parametrize("scope", list(Scope))
def test_admin_allows_every_scope(scope: Scope) -> None:
    key = api_key(Scope.ADMIN)
    assert key.allows(scope)
    key.require(scope)


def test_payments_write_implies_read_but_not_the_reverse() -> None:
    writer, reader = api_key(Scope.PAYMENTS_WRITE), api_key(Scope.PAYMENTS_READ)
    assert writer.allows(Scope.PAYMENTS_READ)
    writer.require(Scope.PAYMENTS_READ)
    assert not reader.allows(Scope.PAYMENTS_WRITE)
    with pytest.raises(PermissionDenied, match="'payments:write'") as caught:
        reader.require(Scope.PAYMENTS_WRITE)
    assert caught.value.http_status == 403


@pytest.mark.parametrize(
    ("held", "wanted"),
    [
        (Scope.PAYMENTS_WRITE, Scope.ADMIN),
        (Scope.PAYMENTS_WRITE, Scope.CUSTOMERS),
        (Scope.CUSTOMERS, Scope.PAYMENTS_READ),
        (Scope.WEBHOOKS, Scope.SUBSCRIPTIONS),
    ],
)
def test_other_scopes_are_denied(held: Scope, wanted: Scope) -> None:
    key = api_key(held)
    assert not key.allows(wanted)
    with pytest.raises(PermissionDenied):
        key.require(wanted)


async def test_scopes_round_trip_through_the_database(key_service: ApiKeyService) -> None:
    scopes = frozenset({Scope.CUSTOMERS, Scope.WEBHOOKS})
    key, secret = await key_service.create(name="scoped", scopes=scopes)
    authenticated = await key_service.authenticate(secret)
    assert authenticated.id == key.id
    assert authenticated.scopes == scopes
    with pytest.raises(PermissionDenied):
        authenticated.require(Scope.PAYMENTS_READ)
    authenticated.require(Scope.WEBHOOKS)


def test_parse_scopes() -> None:
    assert parse_scopes("payments:read, admin") == {Scope.PAYMENTS_READ, Scope.ADMIN}
    assert parse_scopes(" customers ,,customers ") == {Scope.CUSTOMERS}


@pytest.mark.parametrize("raw", ["payments:read,bogus", "PAYMENTS:READ", "", " , "])
def test_parse_scopes_rejects_unknown_or_empty(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_scopes(raw)
    assert caught.value.param == "scopes"
    assert caught.value.http_status == 400


async def test_create_refuses_empty_scopes(key_service: ApiKeyService) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await key_service.create(name="none", scopes=frozenset())
    assert caught.value.param == "scopes"


class CountingDatabase(Database):
    """The real database, counting the connections taken from it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.taken = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        self.taken += 1
        async with super().connection() as conn:
            yield conn


async def test_requests_missing_the_cache_together_share_one_lookup(pool: asyncpg.Pool) -> None:
    db = CountingDatabase(pool)
    keys = ApiKeyService(db, secret=SECRET, cache_ttl_s=60)
    _, secret = await keys.create(name="busy", scopes=frozenset({Scope.PAYMENTS_WRITE}))
    db.taken = 0

    found = await asyncio.gather(*(keys.authenticate(secret) for _ in range(50)))

    assert {k.name for k in found} == {"busy"}
    assert db.taken == 1
    await keys.authenticate(secret)
    assert db.taken == 1  # cached now


async def test_rotation_keeps_the_old_secret_for_the_grace_period_only(
    key_service: ApiKeyService, pool: asyncpg.Pool
) -> None:
    key, old = await key_service.create(name="rotating", scopes=WRITE)
    rotated, new = await key_service.rotate(key.id, grace_s=1.0)
    assert new != old
    assert rotated.id == key.id
    assert rotated.prefix == new[:10]
    assert rotated.rotated_at is not None
    assert (await key_service.authenticate(old)).id == key.id, "within the grace period"
    assert (await key_service.authenticate(new)).id == key.id

    async def old_refused() -> bool:
        return (await key_service.identify(old)).failure is AuthFailure.ROTATED_OUT

    await wait_until(old_refused, timeout_s=5, what="the grace period to end")
    assert (await key_service.authenticate(new)).id == key.id
    retired = await pool.fetchval("SELECT count(*) FROM api_key_retired_hashes")
    assert retired == 1


async def test_a_cached_old_secret_ends_with_its_grace_not_the_cache_ttl(
    pool: asyncpg.Pool,
) -> None:
    cached = ApiKeyService(Database(pool), secret=SECRET, cache_ttl_s=300)
    key, old = await cached.create(name="cached rotation", scopes=WRITE)
    await cached.rotate(key.id, grace_s=1.0)
    await cached.authenticate(old)  # cached now, for at most the second of grace left

    async def old_refused() -> bool:
        return (await cached.identify(old)).failure is AuthFailure.ROTATED_OUT

    await wait_until(old_refused, timeout_s=5, what="the cached secret to stop working")


async def test_rotation_with_no_grace_ends_the_old_secret_at_once(
    key_service: ApiKeyService,
) -> None:
    key, old = await key_service.create(name="compromised", scopes=WRITE)
    _, new = await key_service.rotate(key.id, grace_s=0)
    assert (await key_service.identify(old)).failure is AuthFailure.ROTATED_OUT
    assert (await key_service.authenticate(new)).id == key.id


async def test_rotating_unknown_or_revoked_keys_is_refused(key_service: ApiKeyService) -> None:
    with pytest.raises(NotFound):
        await key_service.rotate(uuid4())
    with pytest.raises(InvalidRequest):
        await key_service.rotate(uuid4(), grace_s=-1)
    key, _ = await key_service.create(name="gone", scopes=WRITE)
    await key_service.revoke(key.id)
    with pytest.raises(StateError):
        await key_service.rotate(key.id)


async def test_last_use_is_recorded_when_a_key_is_read(
    key_service: ApiKeyService,
) -> None:
    key, secret = await key_service.create(name="used", scopes=WRITE)
    assert (await key_service.get(key.id)).last_used_at is None
    await key_service.authenticate(secret)
    used = await key_service.get(key.id)
    assert used.last_used_at is not None
    assert [k.last_used_at for k in await key_service.all() if k.id == key.id] == [
        used.last_used_at
    ]
    with pytest.raises(NotFound):
        await key_service.get(uuid4())


async def test_allow_list_and_rate_limit_are_stored_with_the_key(
    key_service: ApiKeyService,
) -> None:
    nets = (ip_network("203.0.113.0/24"), ip_network("2001:db8::/32"))
    key, secret = await key_service.create(
        name="fenced", scopes=WRITE, allowed_networks=nets, rate_limit=parse_rate("5000/s")
    )
    found = await key_service.authenticate(secret)
    assert found.allowed_networks == nets
    assert found.rate_limit == parse_rate("5000/s")
    assert found.admits("203.0.113.9")
    assert found.admits("2001:db8::1")
    assert not found.admits("198.51.100.1")
    assert not found.admits(None)
    assert key.public()["allowed_ips"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert key.public()["rate_limit"] == "5000/s"
    assert "secret" not in key.public()
