"""`serve_app/security.py` and `serve_app/hardening.py`, in process on a small app with the same
middleware and error handlers: body limits (declared and streamed), JSON-only writes, security
headers (HSTS only over TLS), and CORS off unless origins are configured."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from engine.config import Settings
from serve_app import errors
from serve_app.hardening import harden
from serve_app.middleware import CorrelationMiddleware

LIMIT = 2048


class Echo(BaseModel):
    text: str


def small_app(**settings: object) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    harden(app, Settings(max_body_bytes=LIMIT, **settings))  # type: ignore[arg-type]
    app.add_middleware(CorrelationMiddleware)

    @app.post("/echo")
    async def echo(body: Echo) -> dict[str, int]:
        return {"length": len(body.text)}

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    @app.post("/console/form")
    async def console_form(request: Request) -> dict[str, int]:
        return {"length": len(await request.body())}

    @app.post("/empty")
    async def empty() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/read")
    async def read() -> dict[str, bool]:
        return {"ok": True}

    return app


def client(app: FastAPI, base: str = "http://test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base)


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with client(small_app()) as c:
        yield c


async def test_a_body_over_the_limit_is_refused_by_its_length(api: httpx.AsyncClient) -> None:
    response = await api.post("/echo", json={"text": "x" * LIMIT})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert response.headers["x-correlation-id"]
    assert (await api.post("/echo", json={"text": "x" * 100})).json() == {"length": 100}


@pytest.mark.parametrize("path", ["/echo", "/raw"])
async def test_a_streamed_body_is_cut_off_past_the_limit(api: httpx.AsyncClient, path: str) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"text": "'
        for _ in range(100):
            sent += 1
            yield b"x" * 512
        yield b'"}'

    response = await api.post(path, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert sent < 100, "the body was not read to its end"


async def test_writes_must_be_json(api: httpx.AsyncClient) -> None:
    form = await api.post("/echo", content=b"text=hi", headers={"Content-Type": "text/plain"})
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "unsupported_media_type"
    unnamed = await api.post("/echo", content=b'{"text": "hi"}')
    assert unnamed.status_code == 415
    charset = await api.post(
        "/echo",
        content=b'{"text": "hi"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 200
    assert (await api.post("/empty")).status_code == 200, "a write without a body needs no type"
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
    assert (await api.post("/raw", content=b"a=1", headers=urlencoded)).status_code == 415
    console = await api.post("/console/form", content=b"a=1", headers=urlencoded)
    assert console.status_code == 200, "the console's HTML forms are the one exception"
    other = await api.post("/console/form", content=b"a=1", headers={"Content-Type": "text/plain"})
    assert other.status_code == 415


async def test_security_headers_on_every_answer_hsts_only_over_tls() -> None:
    app = small_app()
    async with client(app) as plain, client(app, "https://test") as tls:
        for response in (
            await plain.get("/read"),
            await plain.post("/echo", content=b"x", headers={"Content-Type": "text/plain"}),
            await plain.get("/missing"),
        ):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["cache-control"] == "no-store"
            assert "strict-transport-security" not in response.headers
        secure = await tls.get("/read")
        assert secure.headers["strict-transport-security"].startswith("max-age=")


async def test_cors_is_off_by_default_and_follows_the_allow_list() -> None:
    preflight = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    async with client(small_app()) as closed:
        response = await closed.options("/echo", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
        simple = await closed.get("/read", headers={"Origin": "https://shop.example"})
        assert "access-control-allow-origin" not in simple.headers
    allowed = small_app(cors_allowed_origins=("https://shop.example",))
    async with client(allowed) as open_:
        ok = await open_.options("/echo", headers=preflight)
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://shop.example"
        other = await open_.options(
            "/echo", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
