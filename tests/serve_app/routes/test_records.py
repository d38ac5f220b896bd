"""The read-side database routes and the audit trail through the real stack: a purchase and its
refund read back as transaction rows, scopes enforced, every kind of bad input a 400 naming its
parameter (never a 500), SQL in a filter only ever a value, and operator answers that name no
host, port or user."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from engine.auth.keys import ApiKeyService, Scope
from engine.config import Settings
from engine.ratelimit.limits import UNLIMITED
from tests.factories import Api

INJECTION = "'; DROP TABLE transactions; --"


@pytest.fixture(scope="module")
async def admin_api(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    # Unlimited: admin routes allow 10/s, and these tests are not about the limit.
    _, secret = await keys.create(
        name="records-admin", scopes=frozenset({Scope.ADMIN}), rate_limit=UNLIMITED
    )
    return Api(http, secret)


@pytest.fixture(scope="module")
async def customers_api(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    _, secret = await keys.create(name="records-customers", scopes=frozenset({Scope.CUSTOMERS}))
    return Api(http, secret)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_a_purchase_and_its_refund_read_back(api: Api) -> None:
    paid = await api.purchase(amount=4200, currency="EUR")
    refunded = await api.post(
        "/api/payments/refund", {"payment_id": paid["id"], "amount": 1000}, str(uuid.uuid4())
    )
    assert refunded.status_code == 200, refunded.text

    record = ok(await api.get(f"/api/database/transactions/{paid['id']}"))
    assert (record["object"], record["type"], record["amount"]) == ("transaction", "purchase", 4200)
    assert [r["amount"] for r in record["refunds"]] == [1000]
    assert record["payment_method"]["last4"] == "4242"

    rows = ok(await api.get("/api/database/transactions", customer_id=paid["customer_id"]))
    assert {(r["type"], r["parent_id"]) for r in rows} == {
        ("purchase", None),
        ("refund", paid["id"]),
    }
    by_amount = ok(
        await api.get("/api/database/transactions", customer_id=paid["customer_id"], sort="amount")
    )
    assert [r["amount"] for r in by_amount] == [1000, 4200]


async def test_unknown_ids_are_404(api: Api) -> None:
    missing = await api.get(f"/api/database/transactions/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["error"]["param"] == "transaction_id"


BAD_INPUT: list[tuple[str, dict[str, Any], str]] = [
    ("/api/database/transactions", {"sort": "customer_id"}, "sort"),
    ("/api/database/transactions", {"sort": "amount; DROP TABLE transactions"}, "sort"),
    ("/api/database/transactions", {"currency": INJECTION}, "currency"),
    ("/api/database/transactions", {"status": INJECTION}, "status"),
    ("/api/database/transactions", {"type": "charge"}, "type"),
    ("/api/database/transactions", {"customer_id": INJECTION}, "customer_id"),
    ("/api/database/transactions", {"starting_after": "42"}, "starting_after"),
    ("/api/database/transactions", {"starting_after": str(uuid.uuid4())}, "starting_after"),
    ("/api/database/transactions", {"limit": 0}, "limit"),
    ("/api/database/transactions", {"limit": 101}, "limit"),
    ("/api/database/transactions", {"amount_gte": "ten"}, "amount_gte"),
    ("/api/database/transactions", {"amount_gte": 10, "amount_lte": 9}, "amount_lte"),
    (
        "/api/database/transactions",
        {"created_gte": "2026-02-01T00:00:00Z", "created_lt": "2026-01-01T00:00:00Z"},
        "created_lt",
    ),
    ("/api/database/transactions", {"created_lt": "soon"}, "created_lt"),
    ("/api/database/transactions", {"order": "amount"}, "order"),
    ("/api/database/transactions/not-a-uuid", {}, "transaction_id"),
    ("/api/audit-logs", {"entity_type": INJECTION}, "entity_type"),
    ("/api/audit-logs", {"entity_id": "1 OR 1=1"}, "entity_id"),
    ("/api/audit-logs", {"action": "TRUNCATE"}, "action"),
    ("/api/audit-logs", {"api_key_id": "admin"}, "api_key_id"),
    ("/api/audit-logs", {"correlation_id": "x" * 201}, "correlation_id"),
    ("/api/audit-logs", {"limit": 1000}, "limit"),
    (
        "/api/audit-logs",
        {"created_gte": "2026-01-02", "created_lt": "2026-01-01"},
        "created_lt",
    ),
    ("/api/database/stats", {"from": "2026-02-01", "to": "2026-01-31"}, "to"),
    ("/api/database/stats", {"from": "2020-01-01", "to": "2026-01-01"}, "from"),
    ("/api/database/stats", {"from": "2000-01-01"}, "from"),
    ("/api/database/stats", {"to": "tomorrow"}, "to"),
]


@pytest.mark.parametrize(("path", "params", "param"), BAD_INPUT)
async def test_bad_input_is_a_400_naming_the_parameter(
    api: Api, admin_api: Api, path: str, params: dict[str, Any], param: str
) -> None:
    client = api if path.startswith("/api/database/transactions") else admin_api
    response = await client.get(path, **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_sql_in_a_filter_is_only_a_value(admin_api: Api, db: asyncpg.Pool) -> None:
    found = ok(await admin_api.get("/api/audit-logs", correlation_id=INJECTION))
    assert found == []
    assert await db.fetchval("SELECT to_regclass('transactions') IS NOT NULL")


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/api/database/transactions", "customers"),
        (f"/api/database/transactions/{uuid.uuid4()}", "customers"),
        ("/api/database/health", "payments"),
        ("/api/database/migrations", "payments"),
        ("/api/database/stats", "payments"),
        ("/api/audit-logs", "payments"),
    ],
)
async def test_a_key_without_the_scope_is_refused(
    api: Api, customers_api: Api, path: str, who: str
) -> None:
    client = api if who == "payments" else customers_api
    response = await client.get(path)
    assert response.status_code == 403, response.text


async def test_audit_trail_follows_a_request(api: Api, admin_api: Api) -> None:
    correlation = f"records-{uuid.uuid4().hex}"
    paid = await api.post(
        "/api/payments/purchase",
        {
            "amount": 900,
            "currency": "USD",
            "customer": {"email": f"r-{uuid.uuid4().hex[:8]}@example.com"},
            "payment_method": {
                "type": "card",
                "number": "4242424242424242",
                "exp_month": 12,
                "exp_year": 2034,
                "cvc": "123",
            },
        },
        str(uuid.uuid4()),
        **{"X-Correlation-ID": correlation},
    )
    assert paid.status_code == 200, paid.text
    payment_id = paid.json()["data"]["id"]
    entries = ok(await admin_api.get("/api/audit-logs", correlation_id=correlation, limit=100))
    assert {e["correlation_id"] for e in entries} == {correlation}
    mine = [e for e in entries if e["entity_type"] == "transactions"]
    assert {e["entity_id"] for e in mine} == {payment_id}
    assert [e["created_at"] for e in entries] == sorted(
        (e["created_at"] for e in entries), reverse=True
    )
    for entry in entries:
        if entry["entity_type"] == "customers" and entry["new_values"]:
            assert entry["new_values"].get("email") is None  # PII never reaches the trail
    first = ok(await admin_api.get("/api/audit-logs", correlation_id=correlation, limit=1))
    rest = ok(
        await admin_api.get(
            "/api/audit-logs", correlation_id=correlation, limit=100, starting_after=first[0]["id"]
        )
    )
    assert [e["id"] for e in first + rest] == [e["id"] for e in entries]


async def test_operator_answers_name_no_server(admin_api: Api, cluster: Settings) -> None:
    health = ok(await admin_api.get("/api/database/health"))
    assert health["pool"]["size"] >= 1
    assert health["latency_ms"] >= 0
    migrations = ok(await admin_api.get("/api/database/migrations"))
    assert migrations["pending"] == []
    assert all(m["status"] == "applied" and m["checksum"] for m in migrations["applied"])
    stats = ok(await admin_api.get("/api/database/stats"))
    assert {"transactions", "audit_logs"} <= {t["table"] for t in stats["tables"]}
    assert set(health) == {"status", "latency_ms", "server_version", "pool"}
    assert set(health["pool"]) == {"size", "idle", "in_use", "min_size", "max_size"}
    # Numbers may contain the port's digits by chance: the names are what must never appear.
    dsn = urlsplit(cluster.database_dsn)
    for response in (health, migrations, stats):
        text = str(response)
        for secret in (dsn.hostname, dsn.username, dsn.path.strip("/")):
            if secret:
                assert secret not in text
