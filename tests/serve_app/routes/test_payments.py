"""Every payment operation and every illegal transition, through the real stack."""

from __future__ import annotations

import uuid

import asyncpg
import ray

from actors.options import NAMESPACE
from engine.auth.keys import ApiKeyService
from engine.config import Settings
from engine.sharding import shard_of
from tests.factories import Api, payment_body


async def test_purchase_succeeds_and_is_retrievable(api: Api) -> None:
    payment = await api.purchase(amount=2500, currency="EUR")
    assert payment["status"] == "succeeded"
    assert payment["amount_captured"] == 2500
    assert payment["amount_capturable"] == 0
    assert payment["payment_method"] == {
        "type": "card",
        "brand": "visa",
        "last4": "4242",
        "fingerprint": payment["payment_method"]["fingerprint"],
    }
    assert len(payment["payment_method"]["fingerprint"]) == 16
    got = await api.get(f"/api/payments/{payment['id']}")
    assert got.status_code == 200
    data = got.json()["data"]
    assert (data["status"], data["gateway"]) == ("succeeded", "sandbox")
    [attempt] = data["attempts"]
    assert (attempt["gateway"], attempt["kind"], attempt["outcome"]) == (
        "sandbox",
        "charge",
        "approved",
    )
    assert attempt["reference"] == payment["id"]
    assert attempt["gateway_transaction_id"] == payment["gateway_transaction_id"]
    assert "exp_month" not in data["payment_method"]


async def test_authorize_then_partial_capture_releases_the_rest(api: Api) -> None:
    auth = await api.authorize(amount=5000)
    assert auth["status"] == "authorized"
    assert auth["amount_capturable"] == 5000
    response = await api.post("/api/payments/capture", {"payment_id": auth["id"], "amount": 3000})
    assert response.status_code == 200, response.text
    captured = response.json()["data"]
    assert captured["status"] == "captured"
    assert captured["amount_captured"] == 3000
    assert captured["amount_capturable"] == 0
    again = await api.post("/api/payments/capture", {"payment_id": auth["id"]})
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "payment_already_captured"


async def test_capture_by_path_and_over_capture(api: Api) -> None:
    auth = await api.authorize(amount=1000)
    over = await api.post(f"/api/payments/{auth['id']}/capture", {"amount": 1001})
    assert over.status_code == 422
    assert over.json()["error"]["code"] == "amount_too_large"
    assert over.json()["error"]["param"] == "amount"
    ok = await api.post(f"/api/payments/{auth['id']}/capture", {})
    assert ok.status_code == 200
    assert ok.json()["data"]["amount_captured"] == 1000


async def test_void_and_void_after_capture(api: Api) -> None:
    auth = await api.authorize(amount=700)
    voided = await api.post("/api/payments/void", {"payment_id": auth["id"]})
    assert voided.status_code == 200
    assert voided.json()["data"]["status"] == "voided"
    assert voided.json()["data"]["amount_capturable"] == 0
    capture_voided = await api.post("/api/payments/capture", {"payment_id": auth["id"]})
    assert capture_voided.status_code == 422

    auth2 = await api.authorize(amount=700)
    await api.post("/api/payments/capture", {"payment_id": auth2["id"]})
    late = await api.post("/api/payments/void", {"payment_id": auth2["id"]})
    assert late.status_code == 422
    assert late.json()["error"]["code"] == "payment_not_voidable"


async def test_refunds_partial_then_full_then_beyond(api: Api) -> None:
    payment = await api.purchase(amount=1000)
    first = await api.post(
        "/api/payments/refund",
        {"payment_id": payment["id"], "amount": 300, "reason": "requested_by_customer"},
    )
    assert first.status_code == 200, first.text
    assert first.json()["data"]["amount_refunded"] == 300
    assert first.json()["data"]["status"] == "succeeded"
    assert first.json()["data"]["refunds"][0]["reason"] == "requested_by_customer"
    beyond = await api.post("/api/payments/refund", {"payment_id": payment["id"], "amount": 701})
    assert beyond.status_code == 422
    assert beyond.json()["error"]["code"] == "amount_too_large"
    rest = await api.post(f"/api/payments/{payment['id']}/refund", {})
    assert rest.status_code == 200
    assert rest.json()["data"]["amount_refunded"] == 1000
    assert rest.json()["data"]["status"] == "refunded"
    more = await api.post("/api/payments/refund", {"payment_id": payment["id"], "amount": 1})
    assert more.status_code == 422
    assert more.json()["error"]["code"] == "payment_already_refunded"


async def test_refund_of_an_authorization_is_refused(api: Api) -> None:
    auth = await api.authorize(amount=1000)
    response = await api.post("/api/payments/refund", {"payment_id": auth["id"]})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "payment_not_refundable"


async def test_unknown_payment_is_404(api: Api) -> None:
    missing = str(uuid.uuid4())
    for path, body in [
        ("/api/payments/capture", {"payment_id": missing}),
        ("/api/payments/void", {"payment_id": missing}),
        ("/api/payments/refund", {"payment_id": missing}),
    ]:
        response = await api.post(path, body)
        assert response.status_code == 404, path
        assert response.json()["error"]["param"] == "payment_id"
    assert (await api.get(f"/api/payments/{missing}")).status_code == 404


async def test_existing_customer_and_ledger(api: Api) -> None:
    first = await api.purchase(amount=1200)
    customer = first["customer_id"]
    auth = await api.authorize(amount=800, customer_id=customer)
    await api.post("/api/payments/refund", {"payment_id": first["id"], "amount": 200})
    ledger = await api.get(f"/api/customers/{customer}/ledger")
    assert ledger.status_code == 200
    [usd] = ledger.json()["data"]["balances"]
    assert usd == {"currency": "USD", "held": 800, "captured": 1200, "refunded": 200, "net": 1000}
    await api.post("/api/payments/void", {"payment_id": auth["id"]})
    ledger = await api.get(f"/api/customers/{customer}/ledger")
    assert ledger.json()["data"]["balances"][0]["held"] == 0


async def test_unknown_customer_id_is_404(api: Api) -> None:
    response = await api.post("/api/payments/purchase", payment_body(customer_id=str(uuid.uuid4())))
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "customer_id"


async def test_list_filters_and_paginates(api: Api) -> None:
    first = await api.purchase(amount=100)
    customer = first["customer_id"]
    for amount in (200, 300, 400):
        await api.purchase(amount=amount, customer_id=customer)
    page = await api.get("/api/payments", customer_id=customer, limit=3)
    body = page.json()
    assert [p["amount"] for p in body["data"]] == [400, 300, 200]
    assert body["has_more"] is True
    rest = await api.get(
        "/api/payments", customer_id=customer, limit=3, starting_after=body["data"][-1]["id"]
    )
    assert [p["amount"] for p in rest.json()["data"]] == [100]
    assert rest.json()["has_more"] is False
    failed = await api.get("/api/payments", status="failed", limit=100)
    assert all(p["status"] == "failed" for p in failed.json()["data"])
    bad = await api.get("/api/payments", status="nope")
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "status"


async def test_methods_and_health(api: Api) -> None:
    methods = await api.get("/api/payments/methods")
    assert methods.status_code == 200
    listed = methods.json()["data"]
    assert [m["gateway"] for m in listed] == ["sandbox", "sandbox_b"]
    assert listed[0]["methods"] == ["card", "token", "bank", "wallet"]
    assert "amex" in listed[0]["brands"]
    assert listed[0]["supports"] == ["purchase", "authorize", "capture", "void", "refund"]
    assert {m["circuit"] for m in listed} == {"closed"}
    health = await api.http.get("/health")
    assert health.status_code == 200
    assert health.json()["data"]["components"]["database"]["status"] == "ok"
    assert health.json()["data"]["gateway_circuits"] == {"sandbox": "closed", "sandbox_b": "closed"}


async def test_every_change_is_audited_with_key_and_correlation(
    api: Api, db: asyncpg.Pool, keys: ApiKeyService
) -> None:
    response = await api.post(
        "/api/payments/authorize", payment_body(amount=900), **{"X-Correlation-ID": "audit-auth-1"}
    )
    payment = response.json()["data"]
    await api.post(
        "/api/payments/capture",
        {"payment_id": payment["id"]},
        **{"X-Correlation-ID": "audit-capture-1"},
    )
    rows = await db.fetch(
        """SELECT entity_type, action, api_key_id, correlation_id, new_values
           FROM audit_logs WHERE entity_id = $1::uuid ORDER BY created_at""",
        payment["id"],
    )
    assert [r["action"] for r in rows] == ["INSERT", "UPDATE", "UPDATE"]
    assert [r["correlation_id"] for r in rows] == [
        "audit-auth-1",
        "audit-auth-1",
        "audit-capture-1",
    ]
    key_ids = {k.id for k in await keys.all() if k.name == "tests"}
    assert {r["api_key_id"] for r in rows} <= key_ids
    assert rows[-1]["new_values"]["status"] == "captured"
    customer_rows = await db.fetch(
        "SELECT correlation_id FROM audit_logs WHERE entity_id = $1::uuid", payment["customer_id"]
    )
    assert [r["correlation_id"] for r in customer_rows] == ["audit-auth-1"]


async def test_lapsed_authorization_expires_and_releases_its_hold(
    api: Api, db: asyncpg.Pool, cluster: Settings
) -> None:
    auth = await api.authorize(amount=650)
    customer = auth["customer_id"]
    await db.execute(
        "UPDATE transactions SET authorization_expires_at = now() - interval '1 minute' "
        "WHERE id = $1::uuid",
        auth["id"],
    )
    late = await api.post("/api/payments/capture", {"payment_id": auth["id"]})
    assert late.status_code == 422
    assert late.json()["error"]["code"] == "authorization_expired"

    shard = ray.get_actor(
        f"ledger-shard-{shard_of(uuid.UUID(customer), cluster.ledger_shards)}", namespace=NAMESPACE
    )
    await shard.sweep.remote()
    expired = (await api.get(f"/api/payments/{auth['id']}")).json()["data"]
    assert expired["status"] == "expired"
    assert expired["amount_capturable"] == 0
    ledger = (await api.get(f"/api/customers/{customer}/ledger")).json()["data"]
    assert ledger["balances"][0]["held"] == 0
    event = await db.fetchval(
        "SELECT count(*) FROM events WHERE object_id = $1::uuid AND event_type = 'payment.expired'",
        auth["id"],
    )
    assert event == 1
