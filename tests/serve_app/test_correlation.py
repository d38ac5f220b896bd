"""The correlation middleware alone, on a tiny app (no Ray): a visible id is echoed and is the
current correlation while the request runs (so log lines carry it); an unusable one is
replaced; an unsafe one is refused with 400 naming the header; an absent one is minted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.logs.context import current_correlation
from serve_app.middleware import CorrelationMiddleware


async def _seen(request: Request) -> JSONResponse:
    return JSONResponse({"current": current_correlation()})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Route("/seen", _seen)])
    app.add_middleware(CorrelationMiddleware)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield http


async def test_a_visible_id_is_echoed_and_current(client: httpx.AsyncClient) -> None:
    cid = "order-77/retry:2#" + "x" * 111
    assert len(cid) == 128
    answer = await client.get("/seen", headers={"X-Correlation-ID": cid})
    assert answer.headers["x-correlation-id"] == cid
    assert answer.json() == {"current": cid}
    assert current_correlation() is None


async def test_absent_or_unusable_ids_are_replaced(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"X-Correlation-ID": "a" * 129}, {"X-Correlation-ID": "with spaces"}):
        answer = await client.get("/seen", headers=headers)
        minted = answer.headers["x-correlation-id"]
        assert len(minted) == 32
        assert answer.json() == {"current": minted}


@pytest.mark.parametrize(
    "unsafe",
    [
        "tab\there",
        "caf\u00e9",
        "nul\x00",
        # Stored on every row the request writes, where no scrubber reaches.
        "order-7:4242424242424242",
        "4242-4242-4242-4242",
        "cvc=123",
        "pgk_live_abcdef",
    ],
)
async def test_an_unsafe_id_is_refused_with_400(client: httpx.AsyncClient, unsafe: str) -> None:
    # Raw bytes, as a client that does not check its headers sends them.
    headers = [(b"X-Correlation-ID", unsafe.encode("latin-1"))]
    answer = await client.get("/seen", headers=headers)
    assert answer.status_code == 400
    body = answer.json()
    assert body["success"] is False
    assert body["error"]["code"] == "invalid_correlation_id"
    assert body["error"]["param"] == "X-Correlation-ID"
    assert body["correlation_id"] == answer.headers["x-correlation-id"] != unsafe
