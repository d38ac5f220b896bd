"""Every route dependency, in one place: state, the calling key with its scope, the request
context that travels with a money command. All are `async def`: FastAPI runs plain functions in
a thread pool, a hop that costs more than the dependency itself."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import Depends, Header, Request

from engine.auth.keys import ApiKey, Scope
from engine.payments.commands import RequestContext
from engine.payments.intake import check_idempotency_key, request_hash
from serve_app.middleware import correlation_id
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


def scoped(scope: Scope) -> object:
    """A dependency that authenticates the caller and requires `scope`."""

    async def dependency(request: Request, state: State) -> ApiKey:
        key = await state.keys.authenticate(_presented_key(request))
        key.require(scope)
        return key

    return Depends(dependency)


PaymentsRead = Annotated[ApiKey, scoped(Scope.PAYMENTS_READ)]
PaymentsWrite = Annotated[ApiKey, scoped(Scope.PAYMENTS_WRITE)]
WebhooksKey = Annotated[ApiKey, scoped(Scope.WEBHOOKS)]
CustomersKey = Annotated[ApiKey, scoped(Scope.CUSTOMERS)]
SubscriptionsKey = Annotated[ApiKey, scoped(Scope.SUBSCRIPTIONS)]
AdminKey = Annotated[ApiKey, scoped(Scope.ADMIN)]


async def metrics_reader(request: Request, state: State) -> None:
    """`/metrics` readers: a client in a trusted network, or an admin key."""
    client = request.client.host if request.client is not None else ""
    if not _trusted(client, state.settings.metrics_trusted_networks):
        key = await state.keys.authenticate(_presented_key(request))
        key.require(Scope.ADMIN)


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


async def money_context(
    request: Request,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> RequestContext:
    """Who is moving money (with `payments:write`), under which idempotency key, with the keyed
    hash of the request. One flat dependency: this runs on every money request."""
    state = await get_state(request)
    key = await state.keys.authenticate(_presented_key(request))
    key.require(Scope.PAYMENTS_WRITE)
    checked = check_idempotency_key(idempotency_key)
    digest = b""
    if checked is not None:
        digest = request_hash(
            state.settings.secret_bytes, request.method, request.scope["path"], await request.body()
        )
    return RequestContext(key.id, correlation_id(request.scope), checked, digest)


MoneyContext = Annotated[RequestContext, Depends(money_context)]


async def subscriptions_context(
    request: Request,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> RequestContext:
    """Who is changing subscriptions (with `subscriptions`), under which idempotency key, with
    the keyed hash of the request."""
    state = await get_state(request)
    key = await state.keys.authenticate(_presented_key(request))
    key.require(Scope.SUBSCRIPTIONS)
    checked = check_idempotency_key(idempotency_key)
    digest = b""
    if checked is not None:
        digest = request_hash(
            state.settings.secret_bytes, request.method, request.scope["path"], await request.body()
        )
    return RequestContext(key.id, correlation_id(request.scope), checked, digest)


SubscriptionsContext = Annotated[RequestContext, Depends(subscriptions_context)]
