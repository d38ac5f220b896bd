"""MoneyRoute answers exactly as FastAPI's own route class does, without its dependency solver
on well-formed requests. Both are driven in process against real API keys in PostgreSQL; the
endpoint echoes what it was given."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import asyncpg
import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.routing import APIRoute
from redis.asyncio import Redis
from starlette.responses import Response

from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.db.database import Database
from engine.runtime.access import Access, open_access
from schema.api.payments import PaymentCreate
from serve_app import errors, responses
from serve_app.client_ip import ClientAddress
from serve_app.deps import MoneyContext, State
from serve_app.middleware import CorrelationMiddleware
from serve_app.money_route import MoneyRoute
from tests.factories import payment_body


@pytest.fixture
async def access(
    db: asyncpg.Pool, migrated: Settings, infra: dict[str, str]
) -> AsyncIterator[Access]:
    """The key service and guard a replica opens, on the session's PostgreSQL and Redis."""
    redis = Redis.from_url(infra["redis_url"])
    opened = await open_access(migrated, Database(db), redis)
    try:
        yield opened
    finally:
        await opened.close()
        await redis.aclose()


def _app(route_class: type[APIRoute], access: Access, settings: Settings) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.add_middleware(CorrelationMiddleware)
    router = APIRouter(route_class=route_class)

    @router.post("/echo")
    async def echo(body: PaymentCreate, ctx: MoneyContext, state: State) -> Response:
        return responses.ok(
            {
                "body": body.model_dump_json(),
                "api_key_id": str(ctx.api_key_id),
                "idempotency_key": ctx.idempotency_key,
                "request_hash": ctx.request_hash.hex(),
            },
            ctx.correlation_id,
        )

    app.include_router(router)
    app.state.paygrid = SimpleNamespace(
        keys=access.keys, access=access, clients=ClientAddress(()), settings=settings
    )
    return app


@pytest.fixture
async def writer(keys: ApiKeyService) -> str:
    _, secret = await keys.create(name="money-route", scopes=frozenset({Scope.PAYMENTS_WRITE}))
    return secret


@pytest.fixture
async def reader(keys: ApiKeyService) -> str:
    _, secret = await keys.create(name="money-route-ro", scopes=frozenset({Scope.PAYMENTS_READ}))
    return secret


Case = Callable[[str, str], dict[str, Any]]


def _json(body: Any, key: str, **headers: str) -> dict[str, Any]:
    return {
        "content": json.dumps(body).encode(),
        "headers": {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {key}",
            **headers,
        },
    }


CASES: dict[str, Case] = {
    "valid": lambda w, r: _json(payment_body(), w),
    "valid with idempotency key": lambda w, r: _json(
        payment_body(), w, **{"Idempotency-Key": "k1"}
    ),
    "charset": lambda w, r: {
        **_json(payment_body(), w),
        "headers": {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {w}",
        },
    },
    "invalid json": lambda w, r: {**_json(None, w), "content": b"{not json"},
    "empty body": lambda w, r: {**_json(None, w), "content": b""},
    "not utf-8": lambda w, r: {**_json(None, w), "content": b'{"amount": "\xff"}'},
    "text/plain": lambda w, r: {
        **_json(payment_body(), w),
        "headers": {"Content-Type": "text/plain", "Authorization": f"Bearer {w}"},
    },
    "no content type": lambda w, r: {
        **_json(payment_body(), w),
        "headers": {"Authorization": f"Bearer {w}"},
    },
    "vendor +json": lambda w, r: {
        **_json(payment_body(), w),
        "headers": {"Content-Type": "application/vnd.x+json", "Authorization": f"Bearer {w}"},
    },
    "array": lambda w, r: _json([payment_body()], w),
    "unknown field": lambda w, r: _json({**payment_body(), "surprise": 1}, w),
    "missing amount": lambda w, r: _json(
        {k: v for k, v in payment_body().items() if k != "amount"}, w
    ),
    "float amount": lambda w, r: _json({**payment_body(), "amount": 10.5}, w),
    "huge amount": lambda w, r: _json({**payment_body(), "amount": 10**30}, w),
    "bad key, valid body": lambda w, r: _json(payment_body(), "pgk_nope"),
    "bad key, invalid body": lambda w, r: _json({"amount": -1}, "pgk_nope"),
    "bad key, invalid json": lambda w, r: {**_json(None, "pgk_nope"), "content": b"{"},
    "no key": lambda w, r: {
        **_json(payment_body(), w),
        "headers": {"Content-Type": "application/json"},
    },
    "read-only key": lambda w, r: _json(payment_body(), r),
    "long idempotency key": lambda w, r: _json(payment_body(), w, **{"Idempotency-Key": "k" * 256}),
    "reserved idempotency key": lambda w, r: _json(
        payment_body(), w, **{"Idempotency-Key": "paygrid:x"}
    ),
}


def _comparable(response: httpx.Response) -> tuple[int, Any, str | None]:
    body = response.json()
    body.pop("correlation_id", None)
    return response.status_code, body, response.headers.get("content-type")


@pytest.mark.parametrize("case", sorted(CASES))
async def test_money_route_answers_as_fastapi_does(
    case: str, access: Access, migrated: Settings, writer: str, reader: str
) -> None:
    request = CASES[case](writer, reader)
    answers = []
    for route_class in (MoneyRoute, APIRoute):
        app = _app(route_class, access, migrated)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers.append(_comparable(await client.post("/echo", **request)))
    assert answers[0] == answers[1]


async def test_well_formed_requests_skip_the_dependency_solver(
    access: Access, migrated: Settings, writer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved: list[str] = []
    real = fastapi.routing.solve_dependencies  # type: ignore[attr-defined]

    async def counting(*args: Any, **kwargs: Any) -> Any:
        solved.append("solve")
        return await real(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    for route_class, expected in ((MoneyRoute, 0), (APIRoute, 1)):
        solved.clear()
        app = _app(route_class, access, migrated)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            response = await client.post("/echo", **_json(payment_body(), writer))
        assert response.status_code == 200
        assert len(solved) == expected, route_class


def test_a_money_route_refuses_other_parameters() -> None:
    router = APIRouter(route_class=MoneyRoute)

    async def extra(
        body: PaymentCreate, ctx: MoneyContext, state: State, q: int = Query(0)
    ) -> Response:
        raise AssertionError

    with pytest.raises(TypeError, match="MoneyRoute"):
        router.add_api_route("/extra", extra, methods=["POST"])
