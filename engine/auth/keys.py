"""Issue, list, revoke and authenticate API keys.

A key is `pgk_` plus 32 random bytes (base64url). Only HMAC-SHA256(secret_key, key) is stored,
so a leaked table yields nothing usable; the prefix kept beside it lets operators tell keys apart.
Authentication results are cached per process for a short TTL: a revocation takes effect within
`api_key_cache_ttl_s` everywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from uuid import UUID

from engine.auth.models import ApiKey, Scope
from engine.auth.repository import ApiKeyRepository
from engine.db.database import Database
from engine.errors import AuthenticationFailed, InvalidRequest, NotFound

__all__ = ["KEY_PREFIX", "ApiKey", "ApiKeyService", "Scope", "parse_scopes"]

KEY_PREFIX = "pgk_"


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


class ApiKeyService:
    def __init__(
        self,
        db: Database,
        *,
        secret: bytes,
        cache_ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the API-key secret must be at least 16 bytes")
        self._db = db
        self._repository = ApiKeyRepository()
        self._secret = secret
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: dict[bytes, tuple[float, ApiKey | None]] = {}
        self._lookups: dict[bytes, asyncio.Task[ApiKey | None]] = {}

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
        async with self._db.connection() as conn:
            key = await self._repository.insert(
                conn,
                name=name,
                prefix=secret[:10],
                key_hash=self.digest(secret),
                scopes=scopes,
                expires_in=expires,
            )
        return key, secret

    async def all(self) -> list[ApiKey]:
        """Every key, newest first (never their secrets)."""
        async with self._db.connection() as conn:
            return await self._repository.all(conn)

    async def has_live_admin(self) -> bool:
        """Whether any unrevoked admin key exists (the first start creates one if not)."""
        async with self._db.connection() as conn:
            return await self._repository.has_live_admin(conn)

    async def revoke(self, key_id: UUID) -> ApiKey:
        async with self._db.connection() as conn:
            key = await self._repository.revoke(conn, key_id=key_id)
        if key is None:
            raise NotFound(f"no API key {key_id}", param="id")
        self._cache.clear()
        return key

    async def _lookup(self, digest: bytes) -> ApiKey | None:
        """One database read per key at a time: when the cached entry of a busy key expires,
        the requests that miss it together share one lookup instead of each making its own."""
        running = self._lookups.get(digest)
        if running is None:
            running = asyncio.get_running_loop().create_task(self._read(digest))
            self._lookups[digest] = running
            running.add_done_callback(lambda _: self._lookups.pop(digest, None))
        return await asyncio.shield(running)

    async def _read(self, digest: bytes) -> ApiKey | None:
        now = self._clock()
        async with self._db.connection() as conn:
            key = await self._repository.live_by_hash(conn, key_hash=digest)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self._cache_ttl_s, key)
        return key

    async def authenticate(self, presented: str | None) -> ApiKey:
        """The live key behind `presented`, or AuthenticationFailed."""
        if not presented:
            raise AuthenticationFailed(
                "no API key given; send 'Authorization: Bearer <key>'", code="missing_api_key"
            )
        return await self.authenticate_digest(self.digest(presented))

    async def authenticate_digest(self, digest: bytes) -> ApiKey:
        """The live key whose keyed hash is `digest` (what a console session keeps instead of
        the key), or AuthenticationFailed: revocation and expiry apply as to the key itself."""
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > self._clock():
            key = cached[1]
        else:
            key = await self._lookup(digest)
        if key is None:
            raise AuthenticationFailed("the API key is invalid, expired or revoked")
        return key
