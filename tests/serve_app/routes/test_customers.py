"""Customers through the real stack: created, read, found by email and rectified with the
`customers` scope, every read audited; PII never readable in any table (customers made on
their own or inline by a purchase, saved cards' holders) nor in the cluster's logs; the export
holds everything; erasure leaves nothing readable, keeps the money, answers the same twice and
is refused while a subscription lives. Bad input named, unknown ids 404."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import ray

from engine.auth.keys import ApiKeyService, Scope
from tests.factories import Api, card, payment_body
from tests.pii_scan import readable


@pytest.fixture(scope="module")
async def customers_key(keys: ApiKeyService) -> tuple[uuid.UUID, str]:
    key, secret = await keys.create(name="customers", scopes=frozenset({Scope.CUSTOMERS}))
    return key.id, secret


@pytest.fixture(scope="module")
async def customers_api(http: httpx.AsyncClient, customers_key: tuple[uuid.UUID, str]) -> Api:
    return Api(http, customers_key[1])


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


async def _put(api: Api, customer_id: str, body: Any) -> httpx.Response:
    return await api.http.put(
        f"/api/database/customers/{customer_id}", json=body, headers=api.headers()
    )


async def test_rectify_and_find_by_email_with_audited_reads(
    customers_api: Api, customers_key: tuple[uuid.UUID, str], db: asyncpg.Pool
) -> None:
    email = f"Ignatius.Pell-{uuid.uuid4().hex[:6]}@example.com"
    made = [
        (await customers_api.post("/api/database/customers", customer_body(email=email))).json()[
            "data"
        ]
        for _ in range(3)
    ]
    newest_first = [c["id"] for c in reversed(made)]
    page = await customers_api.get("/api/database/customers", email=email.upper(), limit=2)
    assert page.status_code == 200, page.text
    assert [c["id"] for c in page.json()["data"]] == newest_first[:2]
    assert page.json()["has_more"] is True
    rest = await customers_api.get(
        "/api/database/customers", email=email, limit=2, starting_after=newest_first[1]
    )
    assert ([c["id"] for c in rest.json()["data"]], rest.json()["has_more"]) == (
        newest_first[2:],
        False,
    )
    no_email = await customers_api.get("/api/database/customers")
    assert (no_email.status_code, no_email.json()["error"]["param"]) == (400, "email")

    target = made[0]["id"]
    new_email = f"ig.pell-{uuid.uuid4().hex[:6]}@example.org"
    changed = await _put(customers_api, target, {"email": new_email, "phone": None})
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert (data["email"], data["phone"], data["first_name"]) == (new_email, None, "Wilhelmina")
    found = await customers_api.get("/api/database/customers", email=new_email)
    assert [c["id"] for c in found.json()["data"]] == [target]
    for bad, param in (({"email": None}, "email"), ({}, None), ({"phone": "no"}, "phone")):
        refused = await _put(customers_api, target, bad)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"].get("param") == param
    assert (await _put(customers_api, str(uuid.uuid4()), {"phone": None})).status_code == 404

    fetched = await customers_api.get(f"/api/database/customers/{target}")
    cid = fetched.headers["X-Correlation-ID"]
    reads = await db.fetch(
        """SELECT entity_id, api_key_id, new_values FROM audit_logs
           WHERE action = 'READ' AND correlation_id = $1""",
        cid,
    )
    assert [(str(r["entity_id"]), r["api_key_id"]) for r in reads] == [(target, customers_key[0])]
    looked_up = await db.fetchval(
        "SELECT count(*) FROM audit_logs WHERE action = 'READ' AND correlation_id = $1",
        page.headers["X-Correlation-ID"],
    )
    assert looked_up == 2


def _ray_log_text() -> str:
    """Everything the session's Ray processes (replicas, shards) wrote to their log files."""
    node = ray._private.worker._global_node
    if node is None:
        return ""
    chunks = []
    for path in Path(node.get_logs_dir_path()).rglob("*"):
        if path.is_file():
            chunks.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(chunks)


async def test_export_and_erasure_leave_no_pii_and_keep_the_money(
    customers_api: Api, api: Api, db: asyncpg.Pool
) -> None:
    tag = uuid.uuid4().hex[:6]
    profile: dict[str, Any] = {
        "email": f"cornelius.abernathy-{tag}@example.com",
        "first_name": f"Cornelius{tag}",
        "last_name": f"Abernathy{tag}",
        "phone": "+1 415 555 7381",
        "address": {"line1": f"{tag} Gallowglass Lane", "city": "Brimfield", "country": "US"},
    }
    inline: dict[str, Any] = {
        "email": f"philippa.vantongeren-{tag}@example.com",
        "first_name": f"Philippa{tag}",
        "last_name": f"Vantongeren{tag}",
        "phone": "+1 415 555 2946",
        "address": {"line1": f"{tag} Orrery Court", "country": "US"},
    }
    holder = f"Cornelius Cardholder{tag}"
    needles: list[str] = [
        profile["email"],
        profile["first_name"],
        profile["last_name"],
        "555 7381",
        f"{tag} Gallowglass",
        inline["email"],
        inline["first_name"],
        inline["last_name"],
        "555 2946",
        f"{tag} Orrery",
        holder,
    ]
    created = await customers_api.post("/api/database/customers", customer_body(**profile))
    customer = created.json()["data"]["id"]
    bought = await api.post("/api/payments/purchase", payment_body(amount=900, customer={**inline}))
    assert bought.status_code == 200, bought.text
    inline_customer = bought.json()["data"]["customer_id"]
    saved = await api.post(
        "/api/payment-methods", {**card(), "customer_id": customer, "holder_name": holder}
    )
    assert saved.status_code == 200, saved.text
    paid = [await api.purchase(amount=a, customer_id=customer) for a in (1200, 3400)]
    refunded = await api.post("/api/payments/refund", {"payment_id": paid[1]["id"], "amount": 400})
    assert refunded.status_code == 200, refunded.text
    assert await readable(db, needles) == []

    exported = await customers_api.get(f"/api/customers/{customer}/export")
    assert exported.status_code == 200, exported.text
    export = exported.json()["data"]
    assert (export["erased"], export["customer"]["email"]) == (False, profile["email"])
    assert {t["id"] for t in export["transactions"] if t["parent_id"] is None} == {
        p["id"] for p in paid
    }
    assert [r["amount"] for r in export["refunds"]] == [400]
    assert [(m["id"], m["last4"]) for m in export["payment_methods"]] == [
        (saved.json()["data"]["id"], "4242")
    ]
    assert {e["type"] for e in export["events"]} >= {
        "payment.succeeded",
        "payment.refunded",
        "payment_method.attached",
    }
    assert holder not in exported.text
    exports = await db.fetchval(
        "SELECT count(*) FROM audit_logs WHERE action = 'EXPORT' AND correlation_id = $1",
        exported.headers["X-Correlation-ID"],
    )
    assert exports == 1

    totals = "SELECT sum(amount), sum(amount_refunded) FROM transactions WHERE customer_id = $1"
    before = tuple(await db.fetchrow(totals, uuid.UUID(customer)))
    erased = await customers_api.http.delete(
        f"/api/customers/{customer}/pii", headers=customers_api.headers()
    )
    assert erased.status_code == 200, erased.text
    again = await customers_api.http.delete(
        f"/api/customers/{customer}/pii", headers=customers_api.headers()
    )
    assert again.json()["data"] == erased.json()["data"]
    data = erased.json()["data"]
    assert (data["erased"], data["email"], data["first_name"], data["address"]) == (
        True,
        None,
        None,
        None,
    )
    gone = await customers_api.http.delete(
        f"/api/customers/{inline_customer}/pii", headers=customers_api.headers()
    )
    assert gone.status_code == 200, gone.text

    assert tuple(await db.fetchrow(totals, uuid.UUID(customer))) == before
    assert await readable(db, needles) == []
    shown = await customers_api.get(f"/api/database/customers/{customer}")
    assert (shown.json()["data"]["erased"], shown.json()["data"]["email"]) == (True, None)
    after = (await customers_api.get(f"/api/customers/{customer}/export")).json()["data"]
    assert (after["erased"], after["customer"]["last_name"]) == (True, None)
    found = await customers_api.get("/api/database/customers", email=profile["email"])
    assert found.json()["data"] == []
    events = await db.fetch(
        "SELECT payload FROM events WHERE event_type = 'customer.erased' AND object_id = $1",
        uuid.UUID(customer),
    )
    assert [e["payload"]["erased"] for e in events] == [True]
    logged = _ray_log_text().lower()
    assert logged, "the cluster's log files were not found"
    assert [n for n in needles if n.lower() in logged] == []


async def test_erasure_is_refused_while_a_subscription_lives(
    customers_api: Api, api: Api, db: asyncpg.Pool
) -> None:
    customer = (await customers_api.post("/api/database/customers", customer_body())).json()[
        "data"
    ]["id"]
    saved = await api.post("/api/payment-methods", {**card(), "customer_id": customer})
    method_id = saved.json()["data"]["id"]
    method = await db.fetchval(
        "SELECT id FROM payment_methods WHERE customer_id = $1", uuid.UUID(customer)
    )
    assert method_id
    subscription = await db.fetchval(
        """INSERT INTO subscriptions (id, customer_id, amount, currency, interval,
               interval_count, quantity, status, payment_method_id, billing_anchor,
               period_index, current_period_start, current_period_end, owner_api_key_id)
           VALUES (gen_random_uuid(), $1, 1000, 'USD', 'month', 1, 1, 'active', $2, now(),
                   0, now(), now() + interval '1 month', gen_random_uuid())
           RETURNING id""",
        uuid.UUID(customer),
        method,
    )
    refused = await customers_api.http.delete(
        f"/api/customers/{customer}/pii", headers=customers_api.headers()
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "customer_has_active_subscription"
    await db.execute(
        "UPDATE subscriptions SET status = 'cancelled', cancelled_at = now() WHERE id = $1",
        subscription,
    )
    done = await customers_api.http.delete(
        f"/api/customers/{customer}/pii", headers=customers_api.headers()
    )
    assert done.status_code == 200, done.text
    missing = await customers_api.http.delete(
        f"/api/customers/{uuid.uuid4()}/pii", headers=customers_api.headers()
    )
    assert missing.status_code == 404
