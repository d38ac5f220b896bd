"""Idempotency-Key: replays, mismatches and concurrent duplicates charge exactly once."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from engine.auth.keys import ApiKeyService, Scope
from tests.factories import Api, payment_body


async def _payments_with_key(db: asyncpg.Pool, key: str) -> int:
    return await db.fetchval(  # type: ignore[no-any-return]
        """SELECT count(*) FROM transactions t JOIN idempotency_keys i ON i.resource_id = t.id
           WHERE i.idempotency_key = $1""",
        key,
    )


async def test_same_key_same_body_replays(api: Api, db: asyncpg.Pool) -> None:
    key = f"replay-{uuid.uuid4()}"
    body = payment_body(amount=4321)
    first = await api.post("/api/payments/purchase", body, idempotency_key=key)
    second = await api.post("/api/payments/purchase", body, idempotency_key=key)
    assert first.status_code == second.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json()["data"] == second.json()["data"]
    assert await _payments_with_key(db, key) == 1


async def test_same_key_different_body_is_422(api: Api) -> None:
    key = f"mismatch-{uuid.uuid4()}"
    body = payment_body(amount=100)
    assert (await api.post("/api/payments/purchase", body, idempotency_key=key)).status_code == 200
    changed = {**body, "amount": 101}
    response = await api.post("/api/payments/purchase", changed, idempotency_key=key)
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "idempotency_error"


async def test_declines_replay_too(api: Api) -> None:
    key = f"decline-{uuid.uuid4()}"
    body = payment_body(number="4000000000000002")
    first = await api.post("/api/payments/purchase", body, idempotency_key=key)
    again = await api.post("/api/payments/purchase", body, idempotency_key=key)
    assert first.status_code == again.status_code == 402
    assert again.headers["idempotent-replayed"] == "true"
    assert first.json()["error"] == again.json()["error"]


async def test_keys_are_scoped_per_api_key(api: Api, keys: ApiKeyService) -> None:
    key = f"scoped-{uuid.uuid4()}"
    body = payment_body(amount=555)
    first = await api.post("/api/payments/purchase", body, idempotency_key=key)
    assert first.status_code == 200
    # Another API key sending the same Idempotency-Key makes a request of its own.
    _, other = await keys.create(name="other", scopes=frozenset({Scope.PAYMENTS_WRITE}))
    response = await api.http.post(
        "/api/payments/purchase",
        json=body,
        headers={"Authorization": f"Bearer {other}", "Idempotency-Key": key},
    )
    assert response.status_code == 200
    assert response.json()["data"]["id"] != first.json()["data"]["id"]


async def test_twenty_concurrent_purchases_with_one_key_charge_once(
    api: Api, db: asyncpg.Pool
) -> None:
    key = f"burst-{uuid.uuid4()}"
    body = payment_body(amount=2000)
    responses = await asyncio.gather(
        *(api.post("/api/payments/purchase", body, idempotency_key=key) for _ in range(20))
    )
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    ids = {r.json()["data"]["id"] for r in responses}
    assert len(ids) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 19
    assert await _payments_with_key(db, key) == 1
    charged = await db.fetchval(
        "SELECT count(*) FROM transactions WHERE customer_id = $1::uuid",
        responses[0].json()["data"]["customer_id"],
    )
    assert charged == 1


async def test_key_reused_after_expiry_for_another_customer_makes_a_new_customer(
    api: Api, db: asyncpg.Pool
) -> None:
    key = f"recycled-{uuid.uuid4()}"
    first = await api.post("/api/payments/purchase", payment_body(amount=100), idempotency_key=key)
    await db.execute(
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
        "WHERE idempotency_key = $1",
        key,
    )
    second = await api.post("/api/payments/purchase", payment_body(amount=100), idempotency_key=key)
    assert second.status_code == 200
    assert "idempotent-replayed" not in second.headers
    assert second.json()["data"]["customer_id"] != first.json()["data"]["customer_id"]
