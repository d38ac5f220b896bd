"""Every route of the app against every kind of caller: no key, a malformed one, an expired, revoked
or rotated-out (past its grace) key, a key without the route's scope, a key used from outside
its allow-list, and the right key.

The rule table is checked against the app's own route table first, so a route added without a
rule here fails this test until someone decides who may call it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_network
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
from fastapi.routing import APIRoute

from engine.auth.keys import ApiKeyService
from engine.config import Settings
from engine.ratelimit.limits import UNLIMITED
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

# The operator console's pages authenticate by session cookie, not by API key: the key's
# scopes through its session, CSRF on every form and sign-out are tested route by route in
# tests/serve_app/console/test_access.py. Listed here so a new console route is a decision too.
CONSOLE_ROUTES = {
    ("GET", "/console"),
    ("GET", "/console/alerts"),
    ("GET", "/console/customers"),
    ("GET", "/console/customers/{customer_id}"),
    ("GET", "/console/customers/{customer_id}/erase"),
    ("GET", "/console/invoices/{invoice_id}"),
    ("GET", "/console/overview"),
    ("GET", "/console/payments"),
    ("GET", "/console/payments/{payment_id}"),
    ("GET", "/console/queues"),
    ("GET", "/console/sign-in"),
    ("GET", "/console/static/{name}"),
    ("GET", "/console/subscriptions"),
    ("GET", "/console/subscriptions/{subscription_id}"),
    ("GET", "/console/webhooks"),
    ("POST", "/console/alerts/{alert_id}/resolve"),
    ("POST", "/console/customers/{customer_id}/erase"),
    ("POST", "/console/customers/{customer_id}/export"),
    ("POST", "/console/payments/{payment_id}/capture"),
    ("POST", "/console/payments/{payment_id}/refund"),
    ("POST", "/console/payments/{payment_id}/void"),
    ("POST", "/console/queues/{queue}/pause"),
    ("POST", "/console/queues/{queue}/resume"),
    ("POST", "/console/sign-in"),
    ("POST", "/console/sign-out"),
    ("POST", "/console/subscriptions/{subscription_id}/cancel"),
    ("POST", "/console/subscriptions/{subscription_id}/pause"),
    ("POST", "/console/subscriptions/{subscription_id}/resume"),
    ("POST", "/console/webhooks/deliveries/{delivery_id}/replay"),
    ("POST", "/console/webhooks/endpoints/{endpoint_id}/replay-dead"),
    ("POST", "/console/webhooks/endpoints/{endpoint_id}/rotate-secret"),
    ("POST", "/console/webhooks/endpoints/{endpoint_id}/test"),
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
    assert served - RULES.keys() - CONSOLE_ROUTES == set(), "routes without an authorization rule"
    assert RULES.keys() - served == set(), "rules for routes the app no longer serves"
    assert CONSOLE_ROUTES - served == set(), "console routes the app no longer serves"


def wrong_scope(needed: Scope) -> Scope:
    """A scope that does not grant `needed`."""
    return Scope.CUSTOMERS if needed in (Scope.WEBHOOKS, Scope.ADMIN) else Scope.WEBHOOKS


@dataclass(frozen=True)
class Case:
    name: str
    secret: str | None
    status: int
    code: str | None


async def callers(keys: ApiKeyService, db: asyncpg.Pool) -> dict[str, str]:
    """Secrets for each failing kind of caller, each holding every scope (admin)."""
    admin = frozenset({Scope.ADMIN})
    expired, expired_secret = await keys.create(
        name="authz expired", scopes=admin, expires_in_days=1
    )
    await db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", expired.id
    )
    revoked, revoked_secret = await keys.create(name="authz revoked", scopes=admin)
    await keys.revoke(revoked.id)
    rotated, rotated_secret = await keys.create(name="authz rotated", scopes=admin)
    await keys.rotate(rotated.id, grace_s=0)
    _, fenced_secret = await keys.create(
        name="authz fenced", scopes=admin, allowed_networks=(ALLOWED_NETWORK,)
    )
    return {
        "expired": expired_secret,
        "revoked": revoked_secret,
        "rotated_out": rotated_secret,
        "wrong_ip": fenced_secret,
    }


def concrete(path: str) -> str:
    """The path with a fresh id in each parameter."""
    return "/".join(str(uuid4()) if p.startswith("{") else p for p in path.split("/"))


async def test_every_route_for_every_caller(
    http: httpx.AsyncClient, keys: ApiKeyService, db: asyncpg.Pool
) -> None:
    failing = await callers(keys, db)
    right: dict[Scope, str] = {}
    wrong: dict[Scope, str] = {}
    for scope in Scope:
        _, right[scope] = await keys.create(
            name=f"authz {scope}", scopes=frozenset({scope}), rate_limit=UNLIMITED
        )
        _, wrong[scope] = await keys.create(
            name=f"authz not {scope}", scopes=frozenset({wrong_scope(scope)}), rate_limit=UNLIMITED
        )
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
