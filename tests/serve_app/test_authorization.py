"""Every route of the app against every kind of caller: no key, a malformed one, an expired, revoked
or rotated-out (past its grace) key, a key without the route's scope, a key used from outside
its allow-list, and the right key. The console's routes likewise, with sessions: none, one
whose key then expired, was revoked or rotated out, one used from outside its key's allow-list,
one whose key lacks the route's scope, and the right one; and signing in with each kind of key.

The rule table is checked against the app's own route table first, so a route added without a
rule here fails this test until someone decides who may call it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from ipaddress import ip_network
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
from fastapi.routing import APIRoute

from engine.auth.keys import ApiKeyService
from engine.config import Settings
from engine.ratelimit.limits import UNLIMITED, KeyRate
from schema.states import Scope
from serve_app.app import create_app

PUBLIC = None
RULES: dict[tuple[str, str], Scope | None] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("GET", "/metrics"): Scope.ADMIN,
    ("GET", "/api/tracing/active"): Scope.ADMIN,
    ("GET", "/api/tracing/stats"): Scope.ADMIN,
    ("GET", "/api/tracing/requests/{correlation_id}"): Scope.ADMIN,
    ("POST", "/api/payments/purchase"): Scope.PAYMENTS_WRITE,
    ("POST", "/api/payments/authorize"): Scope.PAYMENTS_WRITE,
    ("POST", "/api/payments/capture"): Scope.PAYMENTS_WRITE,
    ("POST", "/api/payments/void"): Scope.PAYMENTS_WRITE,
    ("POST", "/api/payments/refund"): Scope.PAYMENTS_WRITE,
    ("POST", "/api/payments/{payment_id}/capture"): Scope.PAYMENTS_WRITE,
    ("POST", "/api/payments/{payment_id}/void"): Scope.PAYMENTS_WRITE,
    ("POST", "/api/payments/{payment_id}/refund"): Scope.PAYMENTS_WRITE,
    ("GET", "/api/payments/methods"): Scope.PAYMENTS_READ,
    ("GET", "/api/payments/{payment_id}"): Scope.PAYMENTS_READ,
    ("GET", "/api/payments"): Scope.PAYMENTS_READ,
    ("POST", "/api/payment-methods"): Scope.PAYMENTS_WRITE,
    ("GET", "/api/payment-methods/{payment_method_id}"): Scope.PAYMENTS_READ,
    ("DELETE", "/api/payment-methods/{payment_method_id}"): Scope.PAYMENTS_WRITE,
    ("GET", "/api/customers/{customer_id}/ledger"): Scope.PAYMENTS_READ,
    ("GET", "/api/customers/{customer_id}/payment-methods"): Scope.PAYMENTS_READ,
    ("GET", "/api/customers/{customer_id}/export"): Scope.CUSTOMERS,
    ("DELETE", "/api/customers/{customer_id}/pii"): Scope.CUSTOMERS,
    ("POST", "/api/database/customers"): Scope.CUSTOMERS,
    ("GET", "/api/database/customers"): Scope.CUSTOMERS,
    ("GET", "/api/database/customers/{customer_id}"): Scope.CUSTOMERS,
    ("PUT", "/api/database/customers/{customer_id}"): Scope.CUSTOMERS,
    ("POST", "/api/database/orders"): Scope.CUSTOMERS,
    ("GET", "/api/database/orders"): Scope.CUSTOMERS,
    ("GET", "/api/database/orders/{order_id}"): Scope.CUSTOMERS,
    ("POST", "/api/database/orders/{order_id}/cancel"): Scope.CUSTOMERS,
    ("GET", "/api/database/transactions/{transaction_id}"): Scope.PAYMENTS_READ,
    ("GET", "/api/database/transactions"): Scope.PAYMENTS_READ,
    ("POST", "/api/database/transactions"): Scope.ADMIN,
    ("POST", "/api/database/transactions/{transaction_id}/refunds"): Scope.ADMIN,
    ("GET", "/api/database/health"): Scope.ADMIN,
    ("GET", "/api/database/migrations"): Scope.ADMIN,
    ("GET", "/api/database/stats"): Scope.ADMIN,
    ("GET", "/api/audit-logs"): Scope.ADMIN,
    ("GET", "/api/compliance/alerts"): Scope.ADMIN,
    ("POST", "/api/compliance/alerts/{alert_id}/resolve"): Scope.ADMIN,
    ("POST", "/api/webhooks/endpoints"): Scope.WEBHOOKS,
    ("GET", "/api/webhooks/endpoints"): Scope.WEBHOOKS,
    ("GET", "/api/webhooks/endpoints/{endpoint_id}"): Scope.WEBHOOKS,
    ("PUT", "/api/webhooks/endpoints/{endpoint_id}"): Scope.WEBHOOKS,
    ("DELETE", "/api/webhooks/endpoints/{endpoint_id}"): Scope.WEBHOOKS,
    ("POST", "/api/webhooks/endpoints/{endpoint_id}/rotate-secret"): Scope.WEBHOOKS,
    ("POST", "/api/webhooks/test/{endpoint_id}"): Scope.WEBHOOKS,
    ("GET", "/api/webhooks/deliveries"): Scope.WEBHOOKS,
    ("POST", "/api/webhooks/deliveries/retry"): Scope.WEBHOOKS,
    ("POST", "/api/webhooks/deliveries/{delivery_id}/retry"): Scope.WEBHOOKS,
    ("POST", "/api/plans"): Scope.SUBSCRIPTIONS,
    ("GET", "/api/plans"): Scope.SUBSCRIPTIONS,
    ("GET", "/api/plans/{plan_id}"): Scope.SUBSCRIPTIONS,
    ("POST", "/api/plans/{plan_id}/archive"): Scope.SUBSCRIPTIONS,
    ("POST", "/api/subscriptions"): Scope.SUBSCRIPTIONS,
    ("GET", "/api/subscriptions"): Scope.SUBSCRIPTIONS,
    ("GET", "/api/subscriptions/{subscription_id}"): Scope.SUBSCRIPTIONS,
    ("PUT", "/api/subscriptions/{subscription_id}"): Scope.SUBSCRIPTIONS,
    ("DELETE", "/api/subscriptions/{subscription_id}"): Scope.SUBSCRIPTIONS,
    ("POST", "/api/subscriptions/{subscription_id}/pause"): Scope.SUBSCRIPTIONS,
    ("POST", "/api/subscriptions/{subscription_id}/resume"): Scope.SUBSCRIPTIONS,
    ("GET", "/api/subscriptions/{subscription_id}/invoices"): Scope.SUBSCRIPTIONS,
    ("GET", "/api/invoices/{invoice_id}"): Scope.SUBSCRIPTIONS,
    ("GET", "/api/queues/health"): Scope.ADMIN,
    ("GET", "/api/queues/stats"): Scope.ADMIN,
    ("GET", "/api/queues/info"): Scope.ADMIN,
    ("POST", "/api/queues/pause"): Scope.ADMIN,
    ("POST", "/api/queues/resume"): Scope.ADMIN,
    ("DELETE", "/api/queues/clear"): Scope.ADMIN,
    ("POST", "/api/test-clocks"): Scope.SUBSCRIPTIONS,
    ("POST", "/api/test-clocks/{test_clock_id}/advance"): Scope.SUBSCRIPTIONS,
    ("GET", "/api/test-clocks/{test_clock_id}"): Scope.SUBSCRIPTIONS,
    ("GET", "/api/events"): Scope.WEBHOOKS,
    ("GET", "/api/events/{event_id}"): Scope.WEBHOOKS,
    ("POST", "/api/reports/transaction-summary"): Scope.ADMIN,
    ("GET", "/api/reports/{report_id}"): Scope.ADMIN,
    ("GET", "/api/reports/{report_id}/chart.png"): Scope.ADMIN,
    ("POST", "/api/keys"): Scope.ADMIN,
    ("GET", "/api/keys"): Scope.ADMIN,
    ("GET", "/api/keys/{key_id}"): Scope.ADMIN,
    ("DELETE", "/api/keys/{key_id}"): Scope.ADMIN,
    ("POST", "/api/keys/{key_id}/rotate"): Scope.ADMIN,
}


class Console(StrEnum):
    """Who may use a console route that no single scope decides."""

    PUBLIC = "public"  # the sign-in form and the console's own assets
    SIGN_IN = "sign in"  # any live key, admitted by the guard from the client's address
    ANY_KEY = "any key"  # any signed-in session whose key the guard admits


# The operator console's pages authenticate by session cookie: the session's key goes through
# the API's guard on every request (allow-list, scope, rate limit), and CSRF on every form is
# tested in tests/serve_app/console/test_access.py.
CONSOLE_ROUTES: dict[tuple[str, str], Scope | Console] = {
    ("GET", "/console"): Console.ANY_KEY,
    ("GET", "/console/alerts"): Scope.ADMIN,
    ("GET", "/console/customers"): Scope.CUSTOMERS,
    ("GET", "/console/customers/{customer_id}"): Scope.CUSTOMERS,
    ("GET", "/console/customers/{customer_id}/erase"): Scope.CUSTOMERS,
    ("GET", "/console/invoices/{invoice_id}"): Scope.SUBSCRIPTIONS,
    ("GET", "/console/overview"): Scope.PAYMENTS_READ,
    ("GET", "/console/payments"): Scope.PAYMENTS_READ,
    ("GET", "/console/payments/{payment_id}"): Scope.PAYMENTS_READ,
    ("GET", "/console/queues"): Scope.ADMIN,
    ("GET", "/console/sign-in"): Console.PUBLIC,
    ("GET", "/console/static/{name}"): Console.PUBLIC,
    ("GET", "/console/subscriptions"): Scope.SUBSCRIPTIONS,
    ("GET", "/console/subscriptions/{subscription_id}"): Scope.SUBSCRIPTIONS,
    ("GET", "/console/webhooks"): Scope.WEBHOOKS,
    ("POST", "/console/alerts/{alert_id}/resolve"): Scope.ADMIN,
    ("POST", "/console/customers/{customer_id}/erase"): Scope.CUSTOMERS,
    ("POST", "/console/customers/{customer_id}/export"): Scope.CUSTOMERS,
    ("POST", "/console/payments/{payment_id}/capture"): Scope.PAYMENTS_WRITE,
    ("POST", "/console/payments/{payment_id}/refund"): Scope.PAYMENTS_WRITE,
    ("POST", "/console/payments/{payment_id}/void"): Scope.PAYMENTS_WRITE,
    ("POST", "/console/queues/{queue}/pause"): Scope.ADMIN,
    ("POST", "/console/queues/{queue}/resume"): Scope.ADMIN,
    ("POST", "/console/sign-in"): Console.SIGN_IN,
    ("POST", "/console/sign-out"): Console.ANY_KEY,
    ("POST", "/console/subscriptions/{subscription_id}/cancel"): Scope.SUBSCRIPTIONS,
    ("POST", "/console/subscriptions/{subscription_id}/pause"): Scope.SUBSCRIPTIONS,
    ("POST", "/console/subscriptions/{subscription_id}/resume"): Scope.SUBSCRIPTIONS,
    ("POST", "/console/webhooks/deliveries/{delivery_id}/replay"): Scope.WEBHOOKS,
    ("POST", "/console/webhooks/endpoints/{endpoint_id}/replay-dead"): Scope.WEBHOOKS,
    ("POST", "/console/webhooks/endpoints/{endpoint_id}/rotate-secret"): Scope.WEBHOOKS,
    ("POST", "/console/webhooks/endpoints/{endpoint_id}/test"): Scope.WEBHOOKS,
}

# A body no request model accepts (each forbids unknown fields), so the right key reaches
# validation and nothing is created, paused or cleared by this test.
PROBE_BODY = {"authorization_probe": True}
ALLOWED_NETWORK = ip_network("192.0.2.0/24")


def app_routes() -> Iterator[tuple[str, str]]:
    """(method, path) of every API route the app serves, included routers walked."""

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, str]]:
        for route in routes:
            if isinstance(route, APIRoute):
                for method in route.methods or ():
                    yield method, prefix + route.path
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes, prefix + route.include_context.prefix)

    yield from walk(create_app(Settings()).routes, "")


def test_every_route_has_a_rule() -> None:
    served = set(app_routes())
    assert served - RULES.keys() - CONSOLE_ROUTES.keys() == set(), "routes without a rule"
    assert RULES.keys() - served == set(), "rules for routes the app no longer serves"
    assert CONSOLE_ROUTES.keys() - served == set(), "console rules for routes no longer served"


def wrong_scope(needed: Scope) -> Scope:
    """A scope that does not grant `needed`."""
    return Scope.CUSTOMERS if needed in (Scope.WEBHOOKS, Scope.ADMIN) else Scope.WEBHOOKS


@dataclass(frozen=True)
class Case:
    name: str
    secret: str | None
    status: int
    code: str | None


async def callers(
    keys: ApiKeyService,
    db: asyncpg.Pool,
    *,
    rate_limit: KeyRate | None = None,
    spoiled: bool = True,
) -> dict[str, str]:
    """Secrets for each failing kind of caller, each holding every scope (admin); with
    `spoiled` False they still work until `spoil` (the console signs them in first)."""
    admin = frozenset({Scope.ADMIN})
    expired, expired_secret = await keys.create(
        name="authz expired", scopes=admin, expires_in_days=1, rate_limit=rate_limit
    )
    revoked, revoked_secret = await keys.create(
        name="authz revoked", scopes=admin, rate_limit=rate_limit
    )
    rotated, rotated_secret = await keys.create(
        name="authz rotated", scopes=admin, rate_limit=rate_limit
    )
    _, fenced_secret = await keys.create(
        name="authz fenced",
        scopes=admin,
        allowed_networks=(ALLOWED_NETWORK,),
        rate_limit=rate_limit,
    )
    made = {
        "expired": expired_secret,
        "revoked": revoked_secret,
        "rotated_out": rotated_secret,
        "wrong_ip": fenced_secret,
        "expired id": str(expired.id),
        "revoked id": str(revoked.id),
        "rotated_out id": str(rotated.id),
    }
    if spoiled:
        await spoil(keys, db, made)
    return made


async def spoil(keys: ApiKeyService, db: asyncpg.Pool, made: dict[str, str]) -> None:
    """Expire, revoke and rotate out (no grace) the keys `callers` made."""
    await db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
        UUID(made["expired id"]),
    )
    await keys.revoke(UUID(made["revoked id"]))
    await keys.rotate(UUID(made["rotated_out id"]), grace_s=0)


async def scoped_keys(keys: ApiKeyService, name: str) -> tuple[dict[Scope, str], dict[Scope, str]]:
    """Per scope, the secret of a key holding it and of one that does not (both unlimited)."""
    right: dict[Scope, str] = {}
    wrong: dict[Scope, str] = {}
    for scope in Scope:
        _, right[scope] = await keys.create(
            name=f"{name} {scope}", scopes=frozenset({scope}), rate_limit=UNLIMITED
        )
        _, wrong[scope] = await keys.create(
            name=f"{name} not {scope}",
            scopes=frozenset({wrong_scope(scope)}),
            rate_limit=UNLIMITED,
        )
    return right, wrong


def concrete(path: str) -> str:
    """The path with a fresh id in each parameter."""
    return "/".join(str(uuid4()) if p.startswith("{") else p for p in path.split("/"))


async def test_every_route_for_every_caller(
    http: httpx.AsyncClient, keys: ApiKeyService, db: asyncpg.Pool
) -> None:
    failing = await callers(keys, db)
    right, wrong = await scoped_keys(keys, "authz")
    semaphore = asyncio.Semaphore(16)
    mismatches: list[str] = []

    async def probe(method: str, path: str, needed: Scope | None) -> None:
        # One client address per route: its failed authentications fill only its own bucket.
        address = f"2001:db8:77::{uuid4().hex[:4]}"
        cases = [
            Case("no key", None, 401, "missing_api_key"),
            Case("malformed key", "pgk_not a key!", 401, "invalid_api_key"),
            Case("expired", failing["expired"], 401, "invalid_api_key"),
            Case("revoked", failing["revoked"], 401, "invalid_api_key"),
            Case("rotated out", failing["rotated_out"], 401, "invalid_api_key"),
            Case("wrong ip", failing["wrong_ip"], 403, "ip_not_allowed"),
        ]
        if needed is not None:
            cases.append(Case("wrong scope", wrong[needed], 403, "insufficient_scope"))
            cases.append(Case("right key", right[needed], 0, None))
        for case in cases:
            headers = {"X-Forwarded-For": address}
            if case.secret is not None:
                headers["Authorization"] = f"Bearer {case.secret}"
            body = PROBE_BODY if method in ("POST", "PUT") else None
            async with semaphore:
                response = await http.request(method, concrete(path), json=body, headers=headers)
            got = response.status_code
            if needed is None:
                ok = got == 200
            elif case.status == 0:
                ok = got not in (401, 403, 429) and got < 500
            else:
                ok = got == case.status and response.json()["error"]["code"] == case.code
            if not ok:
                mismatches.append(f"{method} {path} [{case.name}]: {got} {response.text[:200]}")

    await asyncio.gather(*(probe(m, p, s) for (m, p), s in RULES.items()))
    assert mismatches == []


@dataclass(frozen=True)
class ConsoleCase:
    name: str
    secret: str | None  # None: no session (or, signing in, no key)
    signed_from: str  # the address its session signs in from
    status: int  # 0: any answer but 401, 403, 429 or a 5xx
    text: str  # what the page must say

    def met_by(self, response: httpx.Response) -> bool:
        got = response.status_code
        if self.status == 0:
            return got not in (401, 403, 429) and got < 500
        return got == self.status and self.text in response.text


def console_cases(
    rule: Scope | Console, address: str, failing: dict[str, str], right: str, wrong: str
) -> list[ConsoleCase]:
    """Who calls a console route of `rule` from `address`, and what each must get. `right`
    holds the route's scope (a payments:read key for a route any key may use), `wrong` not."""
    if rule is Console.PUBLIC:
        return [ConsoleCase("public", None, address, 0, "")]
    spoiled = [
        ConsoleCase(name.replace("_", " "), failing[name], address, 401, "Sign in")
        for name in ("expired", "revoked", "rotated_out")
    ]
    if rule is Console.SIGN_IN:
        return [
            ConsoleCase("no key", "", address, 401, "Sign in"),
            ConsoleCase("malformed key", "pgk_not a key!", address, 401, "Sign in"),
            *spoiled,
            ConsoleCase("wrong ip", failing["wrong_ip"], address, 403, "may not be used"),
            ConsoleCase("right key", right, address, 303, ""),
        ]
    # A session of the fenced key signs in from inside its allow-list, then calls from outside.
    inside = str(ALLOWED_NETWORK[7])
    cases = [
        ConsoleCase("no session", None, address, 401, "Sign in"),
        *spoiled,
        ConsoleCase("wrong ip", failing["wrong_ip"], inside, 403, "may not be used"),
        ConsoleCase("right key", right, address, 0, ""),
    ]
    if isinstance(rule, Scope):
        cases.append(ConsoleCase("wrong scope", wrong, address, 403, "lacks the"))
    return cases


@dataclass
class Probe:
    """One console caller of one route: its own cookie jar, client address and CSRF token."""

    http: httpx.AsyncClient
    csrf_token: str = ""

    async def sign_in(self, secret: str, address: str) -> httpx.Response:
        headers = {"X-Forwarded-For": address}
        form = await self.http.get("/console/sign-in", headers=headers)
        token = re.search(r'name="login_token" value="([^"]+)"', form.text)
        assert token is not None, form.text[:200]
        fields = {"api_key": secret, "login_token": token.group(1)}
        return await self.http.post("/console/sign-in", data=fields, headers=headers)

    async def signed_in(self, secret: str, address: str) -> None:
        """Signed in from `address`, with a CSRF token from the first page the key sees."""
        signed = await self.sign_in(secret, address)
        assert signed.status_code == 303, signed.text[:200]
        headers = {"X-Forwarded-For": address}
        door = await self.http.get("/console", headers=headers)
        page = await self.http.get(door.headers["location"], headers=headers)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None, page.text[:200]
        self.csrf_token = token.group(1)


async def test_every_console_route_for_every_caller(
    cluster: Settings, keys: ApiKeyService, db: asyncpg.Pool
) -> None:
    base = f"http://127.0.0.1:{cluster.port}"
    failing = await callers(keys, db, rate_limit=UNLIMITED, spoiled=False)
    right, wrong = await scoped_keys(keys, "console authz")
    semaphore = asyncio.Semaphore(8)
    probes: list[Probe] = []
    # Each: the route, the case, its probe and the address it calls from.
    planned: list[tuple[str, str, ConsoleCase, Probe, str]] = []

    async def plan(method: str, path: str, rule: Scope | Console) -> None:
        # One client address per route: its failed authentications fill only its own bucket.
        address = f"2001:db8:78::{uuid4().hex[:4]}"
        needs = Scope.PAYMENTS_READ if isinstance(rule, Console) else rule
        cases = console_cases(rule, address, failing, right[needs], wrong[needs])
        for case in cases:
            probe = Probe(httpx.AsyncClient(base_url=base, timeout=60))
            probes.append(probe)
            if case.secret is not None and rule is not Console.SIGN_IN:
                async with semaphore:
                    await probe.signed_in(case.secret, case.signed_from)
            planned.append((method, path, case, probe, address))

    mismatches: list[str] = []

    async def run(method: str, path: str, case: ConsoleCase, probe: Probe, address: str) -> None:
        async with semaphore:
            if (method, path) == ("POST", "/console/sign-in"):
                response = await probe.sign_in(case.secret or "", address)
            else:
                body = {"csrf_token": probe.csrf_token} if method == "POST" else None
                response = await probe.http.request(
                    method, concrete(path), data=body, headers={"X-Forwarded-For": address}
                )
        if not case.met_by(response):
            got = f"{response.status_code} {response.text[:200]}"
            mismatches.append(f"{method} {path} [{case.name}]: {got}")

    try:
        # Every session signs in while its key still works; then the keys are spoiled.
        await asyncio.gather(*(plan(m, p, rule) for (m, p), rule in CONSOLE_ROUTES.items()))
        await spoil(keys, db, failing)
        await asyncio.gather(*(run(*case) for case in planned))
    finally:
        for probe in probes:
            await probe.http.aclose()
    assert mismatches == []
