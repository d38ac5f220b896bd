"""The door every authenticated route goes through: who is calling, from where, with which
scope, and whether their bucket has room.

Per request, on the hot path: one HMAC and one dict lookup (the cached verdict), the key's IP
allow-list when it has one, and one Redis round trip for the rate limit (none for an
`unlimited` key). A failed authentication costs more and is rate-limited per client address:
it draws from that address's bucket, and while the bucket has room it is audited in
`auth_failures`.

When Redis does not answer, payment and standard traffic is let through (a payment platform
that stops taking payments because its limiter is down does more harm than a burst does), and
admin routes are refused with 503: they can wait, and they are what an attacker wants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address
from typing import NoReturn

from engine.auth.keys import ApiKeyService, authentication_failed
from engine.auth.models import ApiKey, AuthFailure, Caller, Scope, Verdict
from engine.errors import PermissionDenied, RateLimited, UpstreamError
from engine.ratelimit.limiter import Decision, RateLimiter
from engine.ratelimit.limits import UNLIMITED, Profile, Rate, Tier

Report = Callable[[Decision], None]


def tier_of(scope: Scope | None) -> Tier:
    """The bucket a route draws from, by the scope it needs (None: any scope, as signing in
    to the console needs)."""
    if scope is Scope.ADMIN:
        return Tier.ADMIN
    if scope is Scope.PAYMENTS_WRITE:
        return Tier.PAYMENTS
    return Tier.STANDARD


@dataclass(frozen=True, slots=True)
class AccessGuard:
    keys: ApiKeyService
    limiter: RateLimiter
    profile: Profile

    def rate_for(self, key: ApiKey, tier: Tier) -> Rate | None:
        """The key's rate on `tier`; None for no limit. A key's own limit replaces the standard
        and payments tiers; admin routes keep theirs unless the key is unlimited."""
        if key.rate_limit == UNLIMITED:
            return None
        if isinstance(key.rate_limit, Rate) and tier is not Tier.ADMIN:
            return key.rate_limit
        return self.profile.rate(tier)

    async def admit(
        self, presented: str | None, scope: Scope | None, caller: Caller, report: Report
    ) -> ApiKey:
        """The calling key, allowed `scope` (None: any) from `caller.ip` with room in its
        bucket; else the error to answer with. Every rate-limit decision goes to `report` (for
        the headers)."""
        verdict = await self.keys.identify(presented)
        return await self._checked(verdict, presented, scope, caller, report)

    async def readmit(
        self, digest: bytes, scope: Scope | None, caller: Caller, report: Report
    ) -> ApiKey:
        """`admit` for the key whose keyed hash is `digest`, what a console session keeps
        instead of the key: the same allow-list, audit, per-address limit, scope and bucket, so
        a session is worth no more than its key presented on that request."""
        verdict = await self.keys.identify_digest(digest)
        return await self._checked(verdict, None, scope, caller, report)

    async def _checked(
        self,
        verdict: Verdict,
        presented: str | None,
        scope: Scope | None,
        caller: Caller,
        report: Report,
    ) -> ApiKey:
        key = verdict.key
        failure = verdict.failure
        if failure is None and key is not None and not key.admits(caller.ip):
            failure = AuthFailure.IP_NOT_ALLOWED
        if failure is not None or key is None:
            await self._refuse(failure or AuthFailure.UNKNOWN, key, presented, caller, report)
        if scope is not None:
            key.require(scope)
        tier = tier_of(scope)
        rate = self.rate_for(key, tier)
        if rate is None:
            return key
        decision = await self.limiter.check(f"{tier}:{key.id}", rate)
        if decision is None:
            if tier is Tier.ADMIN:
                raise UpstreamError(
                    "the rate limiter is unavailable; admin routes wait for it",
                    code="rate_limiter_unavailable",
                )
            return key
        report(decision)
        if not decision.allowed:
            raise RateLimited(
                f"this API key is over its rate limit of {rate} on {tier} routes; "
                f"retry after {decision.retry_after_s} s"
            )
        return key

    async def _refuse(
        self,
        failure: AuthFailure,
        key: ApiKey | None,
        presented: str | None,
        caller: Caller,
        report: Report,
    ) -> NoReturn:
        ip = _valid_ip(caller.ip)
        decision = await self.limiter.check(
            f"{Tier.UNAUTHENTICATED}:{ip or 'unknown'}", self.profile.unauthenticated
        )
        if decision is not None:
            report(decision)
            if not decision.allowed:
                raise RateLimited(
                    "too many failed authentications from this address; "
                    f"retry after {decision.retry_after_s} s"
                )
        await self.keys.record_failure(
            failure,
            key=key,
            presented=presented,
            caller=Caller(ip, caller.method, caller.path, caller.correlation_id),
        )
        if failure is AuthFailure.IP_NOT_ALLOWED:
            raise PermissionDenied(
                "this API key may not be used from this address", code="ip_not_allowed"
            )
        raise authentication_failed(failure)


def _valid_ip(ip: str | None) -> str | None:
    if ip is None:
        return None
    try:
        return str(ip_address(ip))
    except ValueError:
        return None
