"""Customers created on their own through the real stack: created and read back with the
`customers` scope, PII never in clear in the table, bad input named, unknown ids 404."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from engine.auth.keys import ApiKeyService, Scope
from tests.factories import Api


@pytest.fixture(scope="module")
async def customers_api(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    _, secret = await keys.create(name="customers", scopes=frozenset({Scope.CUSTOMERS}))
    return Api(http, secret)


def customer_body(**overrides: Any) -> dict[str, Any]:
    return {
        "email": f"wilhelmina-{uuid.uuid4().hex[:8]}@example.com",
        "first_name": "Wilhelmina",
        "last_name": "Thistlewood",
        "phone": "+1 415 555 0100",
        "address": {"line1": "1 Marrowbone Row", "city": "Springfield", "country": "US"},
        "consent": {"version": "2026-11", "accepted_at": "2026-11-20T10:00:00Z"},
        **overrides,
    }


async def test_create_and_retrieve(customers_api: Api, db: asyncpg.Pool) -> None:
    body = customer_body()
    created = await customers_api.post("/api/database/customers", body)
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert (data["email"], data["first_name"], data["address"]["city"]) == (
        body["email"],
        "Wilhelmina",
        "Springfield",
    )
    assert data["consent"]["version"] == "2026-11"
    fetched = await customers_api.get(f"/api/database/customers/{data['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["data"] == data
    row = await db.fetchrow("SELECT * FROM customers WHERE id = $1", uuid.UUID(data["id"]))
    assert row["email"] is None
    assert b"Thistlewood" not in bytes(row["ciphertext"])


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"consent": {"version": "v1"}}, "consent.accepted_at"),
        ({"phone": "call me"}, "phone"),
        ({"nickname": "Billie"}, "nickname"),
    ],
)
async def test_bad_input_names_the_field(
    customers_api: Api, overrides: dict[str, Any], param: str
) -> None:
    response = await customers_api.post("/api/database/customers", customer_body(**overrides))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


async def test_unknown_ids_and_scope(customers_api: Api, api: Api) -> None:
    missing = await customers_api.get(f"/api/database/customers/{uuid.uuid4()}")
    assert missing.status_code == 404
    clock = await customers_api.post(
        "/api/database/customers", customer_body(test_clock=str(uuid.uuid4()))
    )
    assert clock.status_code == 404
    assert clock.json()["error"]["param"] == "test_clock"
    # The suite's key holds payments and webhooks scopes only.
    denied = await api.post("/api/database/customers", customer_body())
    assert denied.status_code == 403
