"""Every route dependency, in one place: state, the calling key with its scope, the request
context that travels with a money command. All are `async def`: FastAPI runs plain functions in
a thread pool, a hop that costs more than the dependency itself."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from pydantic import WithJsonSchema

from engine.auth.guard import Report
from engine.auth.keys import ApiKey, Scope
from engine.auth.models import Caller
from engine.payments.commands import RequestContext
from engine.payments.intake import (
    IDEMPOTENCY_KEY_CHARS,
    INTERNAL_KEY_PREFIX,
    MAX_IDEMPOTENCY_KEY,
    check_idempotency_key,
    request_hash,
)
from engine.ratelimit.limiter import Decision
from serve_app.middleware import correlation_id
from serve_app.security import RATE_LIMIT_STATE
from serve_app.state import AppState


async def get_state(request: Request) -> AppState:
    return request.app.state.paygrid  # type: ignore[no-any-return]


State = Annotated[AppState, Depends(get_state)]


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    return request.headers.get("x-api-key")


def caller_of(request: Request, state: AppState) -> Caller:
    """Who is calling, as the guard checks and audits it: the client's address (as far as
    the trusted proxies vouch), the method, the path and the correlation id."""
    raw = request.scope
    return Caller(state.clients.of(raw), raw["method"], raw["path"], correlation_id(raw))


def rate_limit_report(request: Request) -> Report:
    """Where the guard's rate-limit decision goes: the request's state, from which the
    security middleware writes the `X-RateLimit-*` headers (and `Retry-After` on a 429)."""
    raw = request.scope

    def report(decision: Decision) -> None:
        raw["state"][RATE_LIMIT_STATE] = decision

    return report


async def admitted(request: Request, state: AppState, scope: Scope) -> ApiKey:
    """The calling key, through the guard: authenticated, allowed `scope` from the client's
    address, within its rate limit (the decision kept for the response's headers)."""
    return await state.access.guard.admit(
        _presented_key(request), scope, caller_of(request, state), rate_limit_report(request)
    )


def scoped(scope: Scope) -> object:
    """A dependency that authenticates the caller and requires `scope`."""

    async def dependency(request: Request, state: State) -> ApiKey:
        return await admitted(request, state, scope)

    return Depends(dependency)


PaymentsRead = Annotated[ApiKey, scoped(Scope.PAYMENTS_READ)]
PaymentsWrite = Annotated[ApiKey, scoped(Scope.PAYMENTS_WRITE)]
WebhooksKey = Annotated[ApiKey, scoped(Scope.WEBHOOKS)]
CustomersKey = Annotated[ApiKey, scoped(Scope.CUSTOMERS)]
SubscriptionsKey = Annotated[ApiKey, scoped(Scope.SUBSCRIPTIONS)]
AdminKey = Annotated[ApiKey, scoped(Scope.ADMIN)]


async def metrics_reader(request: Request, state: State) -> None:
    """`/metrics` readers: a client in a trusted network, or an admin key (through the guard,
    as every key is: allow-list, rate limit, failed attempts audited)."""
    client = state.clients.of(request.scope) or ""
    if not _trusted(client, state.settings.metrics_trusted_networks):
        await admitted(request, state, Scope.ADMIN)


def _trusted(host: str, networks: tuple[str, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


MetricsReader = Annotated[None, Depends(metrics_reader)]


async def correlation(request: Request) -> str:
    return correlation_id(request.scope)


CorrelationId = Annotated[str, Depends(correlation)]


ContextDependency = Callable[[Request, str | None], Awaitable[RequestContext]]
# Every dependency request_context made: MoneyRoute calls them directly on its fast path.
CONTEXT_DEPENDENCIES: set[ContextDependency] = set()


# What `check_idempotency_key` accepts, as the OpenAPI document states it (the reserved prefix
# in any case, as it is compared).
_RESERVED = "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in INTERNAL_KEY_PREFIX)
IdempotencyKey = Annotated[
    str | None,
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_IDEMPOTENCY_KEY,
            "pattern": IDEMPOTENCY_KEY_CHARS,
            "not": {"pattern": f"^{_RESERVED}"},
            "description": "Replays the first answer to a repeat of the same request; "
            f"printable ASCII, not starting with '{INTERNAL_KEY_PREFIX}' (reserved).",
        }
    ),
    Header(alias="Idempotency-Key"),
]


def request_context(scope: Scope) -> object:
    """A dependency giving who is moving money or changing billing (with `scope`), under which
    idempotency key, with the keyed hash of the request. One flat dependency: it runs on every
    money request."""

    async def dependency(
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> RequestContext:
        state = await get_state(request)
        key = await admitted(request, state, scope)
        checked = check_idempotency_key(idempotency_key)
        digest = b""
        if checked is not None:
            digest = request_hash(
                state.settings.secret_bytes,
                request.method,
                request.scope["path"],
                await request.body(),
            )
        return RequestContext(key.id, correlation_id(request.scope), checked, digest)

    CONTEXT_DEPENDENCIES.add(dependency)
    return Depends(dependency)


MoneyContext = Annotated[RequestContext, request_context(Scope.PAYMENTS_WRITE)]
SubscriptionsContext = Annotated[RequestContext, request_context(Scope.SUBSCRIPTIONS)]
AdminContext = Annotated[RequestContext, request_context(Scope.ADMIN)]
CustomersContext = Annotated[RequestContext, request_context(Scope.CUSTOMERS)]
