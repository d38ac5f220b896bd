"""Console sessions: an operator signs in once with an API key and then browses with a cookie.

The cookie holds only a random session id. Redis holds the session under a hash of that id (a
copy of Redis yields no usable cookie), with the key's id, its scopes, the keyed hash of the key
(never the key) and the session's CSRF token. Every request re-authenticates that hash through
`ApiKeyService`, so a revoked or expired key ends its sessions within the key cache's TTL; a
session idle longer than `idle_s` (by the injected clock) is deleted, and Redis expires it on
its own after the same time. Losing Redis signs operators out and loses nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from engine.auth.keys import ApiKey, ApiKeyService
from engine.errors import AuthenticationFailed, PermissionDenied

_PREFIX = "paygrid:console:session:"


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A live session: the key it acts as (re-checked on this request) and its CSRF token."""

    key: ApiKey
    csrf_token: str

    def check_csrf(self, presented: str | None) -> None:
        """PermissionDenied unless `presented` is this session's CSRF token."""
        if not presented or not hmac.compare_digest(presented, self.csrf_token):
            raise PermissionDenied(
                "the form's CSRF token is missing or wrong; reload the page", code="csrf_failed"
            )


class SessionService:
    def __init__(
        self,
        redis: Redis,
        keys: ApiKeyService,
        *,
        idle_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._idle_s = idle_s
        self._clock = clock

    @staticmethod
    def _redis_key(session_id: str) -> str:
        return _PREFIX + hashlib.sha256(session_id.encode()).hexdigest()

    async def sign_in(self, presented: str) -> tuple[str, ConsoleSession]:
        """A new session for the live key `presented`: its id (for the cookie) and the
        session. AuthenticationFailed for a key that is not live."""
        key = await self._keys.authenticate(presented)
        session_id = secrets.token_urlsafe(32)
        session = ConsoleSession(key, secrets.token_urlsafe(32))
        record = {
            "key_id": str(key.id),
            "scopes": sorted(key.scopes),
            "key_hash": self._keys.digest(presented).hex(),
            "csrf_token": session.csrf_token,
            "seen_at": self._clock(),
        }
        await self._redis.set(
            self._redis_key(session_id), orjson.dumps(record), px=int(self._idle_s * 1000)
        )
        return session_id, session

    async def resume(self, session_id: str | None) -> ConsoleSession:
        """The session behind `session_id`, its idle timer restarted; AuthenticationFailed when
        there is none, it sat idle too long, or its key is no longer live (the session is then
        deleted)."""
        if not session_id:
            raise AuthenticationFailed("sign in to use the console", code="no_session")
        name = self._redis_key(session_id)
        raw = await self._redis.get(name)
        if raw is None:
            raise AuthenticationFailed(
                "the console session ended; sign in again", code="no_session"
            )
        record = orjson.loads(raw)
        now = self._clock()
        try:
            if now - float(record["seen_at"]) > self._idle_s:
                raise AuthenticationFailed("the console session was idle too long", code="idle")
            key = await self._keys.authenticate_digest(bytes.fromhex(record["key_hash"]))
        except AuthenticationFailed:
            await self._redis.delete(name)
            raise
        record["seen_at"] = now
        await self._redis.set(name, orjson.dumps(record), px=int(self._idle_s * 1000), xx=True)
        return ConsoleSession(key, record["csrf_token"])

    async def sign_out(self, session_id: str | None) -> None:
        """Delete the session (nothing to do when there is none)."""
        if session_id:
            await self._redis.delete(self._redis_key(session_id))
