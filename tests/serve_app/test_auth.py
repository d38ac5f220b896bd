"""API keys: 401 without a live key, 403 without the scope, /health public."""

from __future__ import annotations

import asyncpg
import httpx

from engine.auth.keys import ApiKeyService, Scope
from tests.factories import payment_body


async def test_missing_and_invalid_keys_are_401(http: httpx.AsyncClient) -> None:
    missing = await http.post("/api/payments/purchase", json=payment_body())
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_api_key"
    invalid = await http.get("/api/payments", headers={"Authorization": "Bearer pgk_nope"})
    assert invalid.status_code == 401
    assert invalid.json()["error"]["type"] == "authentication_error"


async def test_x_api_key_header_works(http: httpx.AsyncClient, api_key: str) -> None:
    response = await http.get("/api/payments", headers={"X-API-Key": api_key})
    assert response.status_code == 200


async def test_wrong_scope_is_403(http: httpx.AsyncClient, keys: ApiKeyService) -> None:
    _, reader = await keys.create(name="reader", scopes=frozenset({Scope.PAYMENTS_READ}))
    headers = {"Authorization": f"Bearer {reader}"}
    assert (await http.get("/api/payments", headers=headers)).status_code == 200
    denied = await http.post("/api/payments/purchase", json=payment_body(), headers=headers)
    assert denied.status_code == 403
    assert denied.json()["error"]["type"] == "permission_error"


async def test_revoked_and_expired_keys_are_401(
    http: httpx.AsyncClient, db: asyncpg.Pool, keys: ApiKeyService
) -> None:
    key, secret = await keys.create(name="soon revoked", scopes=frozenset({Scope.PAYMENTS_READ}))
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await http.get("/api/payments", headers=headers)).status_code == 200
    await keys.revoke(key.id)
    assert (await http.get("/api/payments", headers=headers)).status_code == 401

    old, old_secret = await keys.create(
        name="expired", scopes=frozenset({Scope.ADMIN}), expires_in_days=1
    )
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", old.id
        )
    expired = await http.get("/api/payments", headers={"Authorization": f"Bearer {old_secret}"})
    assert expired.status_code == 401


async def test_health_is_public_and_correlation_ids_round_trip(http: httpx.AsyncClient) -> None:
    response = await http.get("/health", headers={"X-Correlation-ID": "order-77.retry:2"})
    assert response.status_code == 200
    assert response.headers["x-correlation-id"] == "order-77.retry:2"
    assert response.json()["correlation_id"] == "order-77.retry:2"
    minted = await http.get("/health", headers={"X-Correlation-ID": "bad id with spaces"})
    assert minted.headers["x-correlation-id"] != "bad id with spaces"
    assert len(minted.headers["x-correlation-id"]) == 32


async def test_openapi_is_served(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    assert "/api/payments/purchase" in spec["paths"]
    assert spec["paths"]["/api/payments/purchase"]["post"]["operationId"] == "purchase"
