"""Issue, list, revoke and authenticate API keys.

A key is `pgk_` plus 32 random bytes (base64url). Only HMAC-SHA256(secret_key, key) is stored,
so a leaked table yields nothing usable; the prefix kept beside it lets operators tell keys apart.
Authentication results are cached per process for a short TTL: a revocation takes effect within
`api_key_cache_ttl_s` everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

import asyncpg

from engine.errors import AuthenticationFailed, InvalidRequest, NotFound, PermissionDenied

KEY_PREFIX = "pgk_"


class Scope(StrEnum):
    PAYMENTS_WRITE = "payments:write"
    PAYMENTS_READ = "payments:read"
    SUBSCRIPTIONS = "subscriptions"
    WEBHOOKS = "webhooks"
    CUSTOMERS = "customers"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def allows(self, scope: Scope) -> bool:
        """admin holds every scope; payments:write implies payments:read."""
        return (
            scope in self.scopes
            or Scope.ADMIN in self.scopes
            or (scope is Scope.PAYMENTS_READ and Scope.PAYMENTS_WRITE in self.scopes)
        )

    def require(self, scope: Scope) -> None:
        if not self.allows(scope):
            raise PermissionDenied(f"this API key lacks the '{scope}' scope")


def parse_scopes(raw: str) -> frozenset[Scope]:
    """Comma-separated scope names, each known."""
    names = [s.strip() for s in raw.split(",") if s.strip()]
    if not names:
        raise InvalidRequest("give at least one scope", param="scopes")
    try:
        return frozenset(Scope(n) for n in names)
    except ValueError as exc:
        known = ", ".join(s.value for s in Scope)
        raise InvalidRequest(f"unknown scope in '{raw}'; known: {known}", param="scopes") from exc


def _row(r: asyncpg.Record) -> ApiKey:
    return ApiKey(
        r["id"],
        r["name"],
        r["prefix"],
        frozenset(Scope(s) for s in r["scopes"]),
        r["created_at"],
        r["expires_at"],
        r["revoked_at"],
    )


_COLUMNS = "id, name, prefix, scopes, created_at, expires_at, revoked_at"


class ApiKeyService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        secret: bytes,
        cache_ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the API-key secret must be at least 16 bytes")
        self._pool = pool
        self._secret = secret
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: dict[bytes, tuple[float, ApiKey | None]] = {}

    def digest(self, key: str) -> bytes:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).digest()

    async def create(
        self, *, name: str, scopes: frozenset[Scope], expires_in_days: int | None = None
    ) -> tuple[ApiKey, str]:
        """A new key and its secret, which is shown this once and never stored."""
        if not 1 <= len(name) <= 100:
            raise InvalidRequest("name must be 1 to 100 characters", param="name")
        if not scopes:
            raise InvalidRequest("give at least one scope", param="scopes")
        if expires_in_days is not None and expires_in_days < 1:
            raise InvalidRequest("expires_in_days must be at least 1", param="expires_in_days")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        expires = None if expires_in_days is None else timedelta(days=expires_in_days)
        row = await self._pool.fetchrow(
            f"""INSERT INTO api_keys (name, prefix, key_hash, scopes, expires_at)
                VALUES ($1, $2, $3, $4, now() + $5::interval) RETURNING {_COLUMNS}""",
            name,
            secret[:10],
            self.digest(secret),
            sorted(s.value for s in scopes),
            expires,
        )
        return _row(row), secret

    async def all(self) -> list[ApiKey]:
        rows = await self._pool.fetch(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at DESC")
        return [_row(r) for r in rows]

    async def revoke(self, key_id: UUID) -> ApiKey:
        row = await self._pool.fetchrow(
            f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
                RETURNING {_COLUMNS}""",
            key_id,
        )
        if row is None:
            raise NotFound(f"no API key {key_id}", param="id")
        self._cache.clear()
        return _row(row)

    async def authenticate(self, presented: str | None) -> ApiKey:
        """The live key behind `presented`, or AuthenticationFailed."""
        if not presented:
            raise AuthenticationFailed(
                "no API key given; send 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        digest = self.digest(presented)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            key = cached[1]
        else:
            row = await self._pool.fetchrow(
                f"""SELECT {_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL
                      AND (expires_at IS NULL OR expires_at > now())""",
                digest,
            )
            key = None if row is None else _row(row)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._cache_ttl_s, key)
        if key is None:
            raise AuthenticationFailed("the API key is invalid, expired or revoked")
        return key
