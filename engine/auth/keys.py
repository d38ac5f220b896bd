"""Issue, list, rotate, revoke and identify API keys.

A key is `pgk_` plus 32 random bytes (base64url). Only HMAC-SHA256(secret_key, key) is stored,
so a leaked table yields nothing usable; the prefix kept beside it lets operators tell keys apart.
Rotation gives a key a new secret and keeps the old one working for a grace period.

What a presented secret is gets cached per process for a short TTL (never past the moment the
key or that secret stops working). A revocation or rotation here clears this cache and, through
`KeyChanges`, every other replica's within a pub/sub round trip; the TTL is the backstop.
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

from engine.auth.invalidation import KeyChanges
from engine.auth.models import ApiKey, AuthFailure, Caller, Network, Scope, Verdict
from engine.auth.repository import ApiKeyRepository
from engine.db.database import Database
from engine.errors import AuthenticationFailed, InvalidRequest, NotFound, StateError
from engine.ratelimit.limits import KeyRate

__all__ = ["KEY_PREFIX", "ApiKey", "ApiKeyService", "Scope", "parse_scopes"]

KEY_PREFIX = "pgk_"
PREFIX_LENGTH = 10
# How often one replica records that a key is in use: `last_used_at` is minute-accurate.
TOUCH_EVERY_S = 60.0
_CACHE_MAX = 10_000


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


def presented_prefix(presented: str) -> str | None:
    """What of a presented secret the audit may keep: the public prefix, when it looks like one
    of ours."""
    return presented[:PREFIX_LENGTH] if presented.startswith(KEY_PREFIX) else None


class ApiKeyService:
    def __init__(
        self,
        db: Database,
        *,
        secret: bytes,
        cache_ttl_s: float = 2.0,
        rotation_grace_s: float = 24 * 3600.0,
        changes: KeyChanges | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the API-key secret must be at least 16 bytes")
        self._db = db
        self._repository = ApiKeyRepository()
        self._secret = secret
        self._cache_ttl_s = cache_ttl_s
        self._rotation_grace_s = rotation_grace_s
        self._changes = changes
        self._clock = clock
        self._cache: dict[bytes, tuple[float, Verdict]] = {}
        self._lookups: dict[bytes, asyncio.Task[Verdict]] = {}
        self._touched: dict[UUID, float] = {}

    def digest(self, key: str) -> bytes:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).digest()

    async def create(
        self,
        *,
        name: str,
        scopes: frozenset[Scope],
        expires_in_days: int | None = None,
        allowed_networks: tuple[Network, ...] = (),
        rate_limit: KeyRate | None = None,
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
                prefix=secret[:PREFIX_LENGTH],
                key_hash=self.digest(secret),
                scopes=scopes,
                expires_in=expires,
                allowed_networks=allowed_networks,
                rate_limit=rate_limit,
            )
        return key, secret

    async def all(self) -> list[ApiKey]:
        """Every key, newest first (never their secrets)."""
        async with self._db.connection() as conn:
            return await self._repository.all(conn)

    async def get(self, key_id: UUID) -> ApiKey:
        async with self._db.connection() as conn:
            key = await self._repository.get(conn, key_id=key_id)
        if key is None:
            raise NotFound(f"no API key {key_id}", param="id")
        return key

    async def has_live_admin(self) -> bool:
        """Whether any unrevoked admin key exists (the first start creates one if not)."""
        async with self._db.connection() as conn:
            return await self._repository.has_live_admin(conn)

    async def revoke(self, key_id: UUID) -> ApiKey:
        """Revoke a key: refused here at once, on every replica within a pub/sub round trip."""
        async with self._db.connection() as conn:
            key = await self._repository.revoke(conn, key_id=key_id)
        if key is None:
            raise NotFound(f"no API key {key_id}", param="id")
        await self._changed(key_id)
        return key

    async def rotate(self, key_id: UUID, *, grace_s: float | None = None) -> tuple[ApiKey, str]:
        """A new secret for the key, working now; the old one works for `grace_s` more (the
        service's default when None), then never again."""
        if grace_s is not None and grace_s < 0:
            raise InvalidRequest("the grace period cannot be negative", param="grace_period_s")
        grace = timedelta(seconds=self._rotation_grace_s if grace_s is None else grace_s)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        async with self._db.transaction() as conn:
            key = await self._repository.rotate(
                conn,
                key_id=key_id,
                prefix=secret[:PREFIX_LENGTH],
                key_hash=self.digest(secret),
                grace=grace,
            )
            if key is None:
                found = await self._repository.get(conn, key_id=key_id)
                if found is None:
                    raise NotFound(f"no API key {key_id}", param="id")
                raise StateError(f"API key {key_id} is revoked; it cannot be rotated")
        await self._changed(key_id)
        return key, secret

    def forget(self) -> None:
        """Drop every cached verdict (another replica changed a key)."""
        self._cache.clear()

    async def _changed(self, key_id: UUID) -> None:
        self.forget()
        if self._changes is not None:
            await self._changes.publish(key_id)

    async def identify(self, presented: str | None) -> Verdict:
        """What `presented` is: a usable key, or the reason it is not."""
        if not presented:
            return Verdict(None, AuthFailure.MISSING)
        return await self.identify_digest(self.digest(presented))

    async def authenticate(self, presented: str | None) -> ApiKey:
        """The usable key behind `presented`, or AuthenticationFailed."""
        return _usable(await self.identify(presented))

    async def identify_digest(self, digest: bytes) -> Verdict:
        """What the key whose keyed hash is `digest` (what a console session keeps instead of
        the key) is now: revocation, expiry and rotation apply as to the key itself."""
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        return await self._lookup(digest)

    async def record_failure(
        self, failure: AuthFailure, *, key: ApiKey | None, presented: str | None, caller: Caller
    ) -> None:
        """Audit a failed authentication: the key's id when one matched, else the prefix of
        what was presented; never the secret."""
        async with self._db.connection() as conn:
            await self._repository.record_failure(
                conn,
                reason=failure,
                key_id=None if key is None else key.id,
                prefix=None if key is not None or not presented else presented_prefix(presented),
                caller=caller,
            )

    async def _lookup(self, digest: bytes) -> Verdict:
        """One database read per key at a time: when the cached entry of a busy key expires,
        the requests that miss it together share one lookup instead of each making its own."""
        running = self._lookups.get(digest)
        if running is None:
            running = asyncio.get_running_loop().create_task(self._read(digest))
            self._lookups[digest] = running
            running.add_done_callback(lambda _: self._lookups.pop(digest, None))
        return await asyncio.shield(running)

    async def _read(self, digest: bytes) -> Verdict:
        now = self._clock()
        async with self._db.connection() as conn:
            match = await self._repository.by_hash(conn, key_hash=digest)
            # Recorded as the key is read (not per request), at most once a minute.
            if match is not None and match.failure() is None and self._touch_due(match.key.id):
                await self._repository.touch(conn, key_id=match.key.id)
        ttl = self._cache_ttl_s
        if match is None:
            verdict = Verdict(None, AuthFailure.UNKNOWN)
        else:
            verdict = Verdict(match.key, match.failure())
            usable_for = match.usable_for_s()
            if verdict.failure is None and usable_for is not None:
                ttl = min(ttl, usable_for)
        if len(self._cache) > _CACHE_MAX:
            self._cache.clear()
        self._cache[digest] = (now + ttl, verdict)
        return verdict

    def _touch_due(self, key_id: UUID) -> bool:
        now = self._clock()
        last = self._touched.get(key_id)
        if last is not None and now - last < TOUCH_EVERY_S:
            return False
        if len(self._touched) > _CACHE_MAX:
            self._touched.clear()
        self._touched[key_id] = now
        return True


def authentication_failed(failure: AuthFailure) -> AuthenticationFailed:
    """The error a caller sees: whether a key exists, expired or was revoked stays in the
    audit, not in the answer."""
    if failure is AuthFailure.MISSING:
        return AuthenticationFailed(
            "no API key given; send 'Authorization: Bearer <key>'", code="missing_api_key"
        )
    return AuthenticationFailed("the API key is invalid, expired or revoked")


def _usable(verdict: Verdict) -> ApiKey:
    if verdict.key is None or verdict.failure is not None:
        raise authentication_failed(verdict.failure or AuthFailure.UNKNOWN)
    return verdict.key
