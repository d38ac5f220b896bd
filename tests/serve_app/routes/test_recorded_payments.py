"""Payments settled outside paygrid, recorded through the real stack (`POST
/api/database/transactions`, admin): through the customer's ledger shard, idempotent like a
purchase, audited, booked in the ledger, paying the order, shown in the records with their
method, and delivered as events with the order's; bad input a 400 naming the field. Orders
take an Idempotency-Key too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from engine.auth.keys import ApiKeyService, Scope
from engine.ratelimit.limits import UNLIMITED
from tests.factories import Api
from tests.serve_app.routes.receiver import Receiver, create_endpoint, until

PATH = "/api/database/transactions"


@pytest.fixture(scope="module")
async def admin(http: httpx.AsyncClient, keys: ApiKeyService) -> tuple[Api, str]:
    """An admin key and its id; unlimited, as these tests send more than admin routes' 10/s."""
    key, secret = await keys.create(
        name="recording-admin", scopes=frozenset({Scope.ADMIN}), rate_limit=UNLIMITED
    )
    return Api(http, secret), str(key.id)


@pytest.fixture
async def endpoint(api: Api, receiver: Receiver) -> AsyncIterator[str]:
    """A webhook endpoint for order and payment events, deleted afterwards; yields its path."""
    path = f"/recorded-{uuid.uuid4().hex[:8]}"
    events = ["order.created", "order.paid", "payment.succeeded"]
    made = await create_endpoint(api, f"{receiver.base_url}{path}", events)
    yield path
    await api.http.delete(f"/api/webhooks/endpoints/{made['id']}", headers=api.headers())


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


async def order_for(admin_api: Api, customer_id: str, amount: int = 5000) -> dict[str, Any]:
    body = {"customer_id": customer_id, "amount": amount, "currency": "USD"}
    return data(await admin_api.post("/api/database/orders", body), 201)  # type: ignore[no-any-return]


def recording(customer_id: str, order_id: str, amount: int = 5000, **extra: Any) -> dict[str, Any]:
    return {
        "method": "cash",
        "amount": amount,
        "currency": "USD",
        "customer_id": customer_id,
        "order_id": order_id,
        **extra,
    }


async def test_a_cash_payment_is_recorded_through_the_shard(
    api: Api, admin: tuple[Api, str], receiver: Receiver, endpoint: str
) -> None:
    admin_api, admin_key_id = admin
    who = (await api.purchase(amount=100))["customer_id"]
    order = await order_for(admin_api, who)
    body = recording(who, order["id"], reference="receipt 77", description="paid at the desk")
    key = str(uuid.uuid4())

    recorded = data(await admin_api.post(PATH, body, key))
    replay = await admin_api.post(PATH, body, key)
    reused = await admin_api.post(PATH, {**body, "amount": 4999}, key)

    assert (recorded["status"], recorded["amount_captured"], recorded["gateway"]) == (
        "succeeded",
        5000,
        "external",
    )
    assert recorded["payment_method"] == {"type": "cash", "reference": "receipt 77"}
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert data(replay)["id"] == recorded["id"]
    assert (reused.status_code, reused.json()["error"]["type"]) == (422, "idempotency_error")

    shown = data(await api.get(f"{PATH}/{recorded['id']}"))
    assert (shown["type"], shown["payment_method"]["type"]) == ("purchase", "cash")
    listed = data(await api.get(PATH, customer_id=who))
    # The first card purchase and this one, newest first: the replay wrote nothing.
    assert [(t["id"], t["payment_method"]["type"]) for t in listed] == [
        (recorded["id"], "cash"),
        (listed[1]["id"], "card"),
    ]
    ledger = data(await api.get(f"/api/customers/{who}/ledger"))
    assert ledger["balances"][0]["captured"] == 5100
    detail = data(await admin_api.get(f"/api/database/orders/{order['id']}"))
    assert (detail["status"], detail["amount_paid"]) == ("paid", 5000)
    audited = data(
        await admin_api.get("/api/audit-logs", entity_type="transactions", entity_id=recorded["id"])
    )
    # Written `processing`, then finalized: both by the admin key, under the request's id.
    assert sorted(a["action"] for a in audited) == ["INSERT", "UPDATE"]
    assert {a["api_key_id"] for a in audited} == {admin_key_id}

    def arrived() -> set[str]:
        return {
            r.payload["type"]
            for r in receiver.at(endpoint)
            if r.payload["data"]["object"].get("id") in (order["id"], recorded["id"])
        }

    await until(
        lambda: arrived() == {"order.created", "order.paid", "payment.succeeded"},
        "the order's and the payment's events",
    )


async def test_a_recording_that_does_not_fit_is_refused_by_name(
    api: Api, admin: tuple[Api, str]
) -> None:
    admin_api, _ = admin
    who = (await api.purchase(amount=100))["customer_id"]
    other = (await api.purchase(amount=100))["customer_id"]
    order = await order_for(admin_api, who)
    theirs = await order_for(admin_api, other)
    cases = [
        (recording(who, str(uuid.uuid4())), 404, "order_id"),
        (recording(who, theirs["id"]), 400, "order_id"),
        (recording(who, order["id"], currency="EUR"), 400, "currency"),
        (recording(who, order["id"], amount=5001), 422, "amount"),
    ]
    for body, status, param in cases:
        response = await admin_api.post(PATH, body)
        assert response.status_code == status, response.text
        assert response.json()["error"]["param"] == param
    forbidden = await api.post(PATH, recording(who, order["id"]))
    assert forbidden.status_code == 403, forbidden.text


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("unknown method", {"method": "cheque"}, "method"),
    ("card as method", {"method": "card"}, "method"),
    ("zero amount", {"amount": 0}, "amount"),
    ("negative amount", {"amount": -1}, "amount"),
    ("float amount", {"amount": 10.5}, "amount"),
    ("string amount", {"amount": "100"}, "amount"),
    ("amount over the maximum", {"amount": 100_000_000}, "amount"),
    ("unknown currency", {"currency": "XYZ"}, "currency"),
    ("customer_id not a uuid", {"customer_id": "nope"}, "customer_id"),
    ("order_id not a uuid", {"order_id": "'; DROP TABLE orders; --"}, "order_id"),
    ("card number as reference", {"reference": "4242 4242 4242 4242"}, "reference"),
    ("reference with odd characters", {"reference": "a\x00b"}, "reference"),
    ("unknown field", {"number": "4242424242424242"}, "number"),
]


@pytest.mark.parametrize(("name", "change", "param"), BAD, ids=[b[0] for b in BAD])
async def test_bad_input_is_a_400_naming_the_field(
    admin: tuple[Api, str], name: str, change: dict[str, Any], param: str
) -> None:
    admin_api, _ = admin
    body = {**recording(str(uuid.uuid4()), str(uuid.uuid4())), **change}
    response = await admin_api.post(PATH, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_a_missing_order_is_a_400_naming_it(admin: tuple[Api, str]) -> None:
    admin_api, _ = admin
    body = recording(str(uuid.uuid4()), str(uuid.uuid4()))
    del body["order_id"]
    response = await admin_api.post(PATH, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "order_id"


async def test_an_order_is_created_once_per_idempotency_key(
    api: Api, admin: tuple[Api, str]
) -> None:
    admin_api, _ = admin
    who = (await api.purchase(amount=100))["customer_id"]
    body = {"customer_id": who, "amount": 700, "currency": "USD"}
    key = str(uuid.uuid4())

    first = data(await admin_api.post("/api/database/orders", body, key), 201)
    again = await admin_api.post("/api/database/orders", body, key)
    reused = await admin_api.post("/api/database/orders", {**body, "amount": 701}, key)

    assert (data(again, 201)["id"], again.headers.get("Idempotent-Replayed")) == (
        first["id"],
        "true",
    )
    assert (reused.status_code, reused.json()["error"]["type"]) == (422, "idempotency_error")
    listed = data(await admin_api.get("/api/database/orders", customer_id=who))
    assert [o["id"] for o in listed] == [first["id"]]


async def test_a_recorded_payment_is_refunded_outside_paygrid_and_the_order_follows(
    api: Api, admin: tuple[Api, str]
) -> None:
    admin_api, admin_key_id = admin
    who = (await api.purchase(amount=100))["customer_id"]
    order = await order_for(admin_api, who)
    paid = data(await admin_api.post(PATH, recording(who, order["id"], method="bank_transfer")))
    refunds = f"{PATH}/{paid['id']}/refunds"
    through_gateway = await api.post("/api/payments/refund", {"payment_id": paid["id"]})
    assert through_gateway.status_code == 422, through_gateway.text
    assert through_gateway.json()["error"]["code"] == "payment_recorded_externally"
    assert refunds in through_gateway.json()["error"]["message"]

    body = {"method": "cash", "amount": 1500, "reason": "requested_by_customer", "reference": "r-9"}
    key = str(uuid.uuid4())
    part = data(await admin_api.post(refunds, body, key))
    replay = await admin_api.post(refunds, body, key)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert data(replay)["amount_refunded"] == 1500
    assert (part["status"], part["amount_refunded"]) == ("succeeded", 1500)
    assert [r["amount"] for r in part["refunds"]] == [1500]
    detail = data(await admin_api.get(f"/api/database/orders/{order['id']}"))
    assert detail["status"] == "partially_refunded"

    rest = data(await admin_api.post(refunds, {"method": "bank_transfer"}))
    assert (rest["status"], rest["amount_refunded"]) == ("refunded", 5000)
    detail = data(await admin_api.get(f"/api/database/orders/{order['id']}"))
    assert detail["status"] == "refunded"
    again = await admin_api.post(refunds, {"method": "cash", "amount": 1})
    assert (again.status_code, again.json()["error"]["code"]) == (422, "payment_already_refunded")

    # The refunds are rows of their own, with their method; ledger and audit follow.
    rows = data(await api.get(PATH, customer_id=who, type="refund"))
    assert sorted((r["amount"], r["method"], r["payment_method"]["type"]) for r in rows) == [
        (1500, "cash", "cash"),
        (3500, "bank_transfer", "bank_transfer"),
    ]
    assert {r["parent_id"] for r in rows} == {paid["id"]}
    assert next(r for r in rows if r["amount"] == 1500)["payment_method"]["reference"] == "r-9"
    ledger = data(await api.get(f"/api/customers/{who}/ledger"))
    assert (ledger["balances"][0]["captured"], ledger["balances"][0]["refunded"]) == (5100, 5000)
    audited = data(
        await admin_api.get("/api/audit-logs", entity_type="refunds", api_key_id=admin_key_id)
    )
    assert {a["entity_id"] for a in audited} >= {r["id"] for r in rows}


async def test_a_card_payment_cannot_be_refunded_as_recorded(
    api: Api, admin: tuple[Api, str]
) -> None:
    admin_api, _ = admin
    paid = await api.purchase(amount=900)
    refused = await admin_api.post(f"{PATH}/{paid['id']}/refunds", {"method": "cash"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "payment_not_recorded"
    unknown = await admin_api.post(f"{PATH}/{uuid.uuid4()}/refunds", {"method": "cash"})
    assert unknown.status_code == 404, unknown.text
    for change, param in (({"method": "card"}, "method"), ({"amount": 0}, "amount")):
        bad = await admin_api.post(f"{PATH}/{paid['id']}/refunds", {"method": "cash", **change})
        assert (bad.status_code, bad.json()["error"]["param"]) == (400, param)
    forbidden = await api.post(f"{PATH}/{paid['id']}/refunds", {"method": "cash"})
    assert forbidden.status_code == 403, forbidden.text


async def test_recorded_payments_are_told_apart_by_method(
    api: Api, admin: tuple[Api, str], db: asyncpg.Pool
) -> None:
    admin_api, _ = admin
    who = (await api.purchase(amount=100))["customer_id"]
    order = await order_for(admin_api, who, amount=300)
    cash = data(await admin_api.post(PATH, recording(who, order["id"], amount=300)))
    everything = data(await api.get(PATH, customer_id=who))
    assert sorted((t["type"], t["method"]) for t in everything) == [
        ("purchase", "card"),
        ("purchase", "cash"),
    ]
    by_method = {
        method: [t["id"] for t in data(await api.get(PATH, customer_id=who, method=method))]
        for method in ("card", "cash", "bank_transfer")
    }
    assert by_method["cash"] == [cash["id"]]
    assert by_method["bank_transfer"] == []
    assert by_method["card"] == [t["id"] for t in everything if t["id"] != cash["id"]]
    bad = await api.get(PATH, method="cheque")
    assert (bad.status_code, bad.json()["error"]["param"]) == (400, "method")
    # The transaction_summary view says the same (one statement: one snapshot).
    view, rows = await db.fetchrow(
        """SELECT (SELECT sum(transaction_count) FROM transaction_summary
                   WHERE method = 'cash' AND transaction_type = 'purchase'),
                  (SELECT count(*) FROM transactions WHERE gateway = 'external'
                     AND transaction_type = 'purchase' AND payment_method ->> 'type' = 'cash')"""
    )
    assert view == rows >= 1
