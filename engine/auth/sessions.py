"""Console sessions: an operator signs in once with an API key and then browses with a cookie.

The cookie holds only a random session id. Redis holds the session under a hash of that id (a
copy of Redis yields no usable cookie), with the key's id, its scopes, the keyed hash of the key
(never the key) and the session's CSRF token.

Signing in and every request after it go through the API's `AccessGuard` (the key's hash in
place of the key): the key's IP allow-list against the client's address, failed attempts
audited and limited per address, the route's scope and the key's own rate limit, exactly as
an API request with the key. A key that is revoked, expires or is rotated out ends its
sessions on their next request (within the key cache's TTL, which a change clears at once);
a session idle longer than `idle_s` (by the injected clock) is deleted, and Redis expires it
on its own after the same time. Losing Redis signs operators out and loses nothing else.
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

from engine.auth.guard import AccessGuard, Report
from engine.auth.keys import ApiKey
from engine.auth.models import Caller, Scope
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
        guard: AccessGuard,
        *,
        idle_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._guard = guard
        self._idle_s = idle_s
        self._clock = clock

    @staticmethod
    def _redis_key(session_id: str) -> str:
        return _PREFIX + hashlib.sha256(session_id.encode()).hexdigest()

    async def sign_in(
        self, presented: str, caller: Caller, report: Report
    ) -> tuple[str, ConsoleSession]:
        """A new session for the key `presented`, admitted by the guard for `caller` (any
        scope): its id (for the cookie) and the session. The guard's error otherwise
        (AuthenticationFailed, PermissionDenied `ip_not_allowed`, RateLimited), the failure
        audited."""
        key = await self._guard.admit(presented, None, caller, report)
        session_id = secrets.token_urlsafe(32)
        session = ConsoleSession(key, secrets.token_urlsafe(32))
        record = {
            "key_id": str(key.id),
            "scopes": sorted(key.scopes),
            "key_hash": self._guard.keys.digest(presented).hex(),
            "csrf_token": session.csrf_token,
            "seen_at": self._clock(),
        }
        await self._redis.set(
            self._redis_key(session_id), orjson.dumps(record), px=int(self._idle_s * 1000)
        )
        return session_id, session

    async def resume(
        self, session_id: str | None, scope: Scope | None, caller: Caller, report: Report
    ) -> ConsoleSession:
        """The session behind `session_id`, its key admitted by the guard for `scope` (None:
        any) from `caller`, its idle timer restarted. AuthenticationFailed when there is no
        session, it sat idle too long, or its key is no longer live (the session is then
        deleted); the guard's other refusals (wrong address, scope, over the rate limit) leave
        the session as it was."""
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
            key = await self._guard.readmit(
                bytes.fromhex(record["key_hash"]), scope, caller, report
            )
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
