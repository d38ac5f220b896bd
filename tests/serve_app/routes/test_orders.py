"""Orders through the real stack: created with the `customers` scope, paid and refunded by
payments naming them, read back with those payments, listed, cancelled; scopes enforced, bad
input a 400 naming its parameter, unknown ids 404, a paid order's cancel a 409."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from engine.auth.keys import ApiKeyService, Scope
from tests.factories import Api

INJECTION = "'; DROP TABLE orders; --"


@pytest.fixture(scope="module")
async def customers_api(http: httpx.AsyncClient, keys: ApiKeyService) -> Api:
    _, secret = await keys.create(name="orders-customers", scopes=frozenset({Scope.CUSTOMERS}))
    return Api(http, secret)


def data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()["data"]


async def new_order(customers_api: Api, customer_id: str, amount: int = 5000) -> dict[str, Any]:
    body = {
        "customer_id": customer_id,
        "amount": amount,
        "currency": "USD",
        "description": "a desk",
        "metadata": {"cart": "c-1"},
    }
    return data(await customers_api.post("/api/database/orders", body), 201)  # type: ignore[no-any-return]


async def test_an_order_is_paid_refunded_and_read_back(api: Api, customers_api: Api) -> None:
    who = (await api.purchase(amount=100))["customer_id"]
    order = await new_order(customers_api, who)
    assert (order["object"], order["status"], order["amount_paid"]) == ("order", "pending", 0)
    assert order["metadata"] == {"cart": "c-1"}

    paid = await api.purchase(amount=5000, customer_id=who, order_id=order["id"])
    refund = {"payment_id": paid["id"], "amount": 1500}
    data(await api.post("/api/payments/refund", refund, str(uuid.uuid4())))

    detail = data(await customers_api.get(f"/api/database/orders/{order['id']}"))
    assert (detail["status"], detail["amount_paid"], detail["amount_refunded"]) == (
        "partially_refunded",
        5000,
        1500,
    )
    [payment] = detail["transactions"]
    assert (payment["id"], payment["type"]) == (paid["id"], "purchase")
    assert [r["amount"] for r in payment["refunds"]] == [1500]

    listed = data(await customers_api.get("/api/database/orders", customer_id=who))
    assert [o["id"] for o in listed] == [order["id"]]
    cancel = await customers_api.post(f"/api/database/orders/{order['id']}/cancel", {})
    assert cancel.status_code == 409, cancel.text
    assert cancel.json()["error"]["code"] == "order_paid"


async def test_a_pending_order_cancels_and_takes_no_payment(api: Api, customers_api: Api) -> None:
    who = (await api.purchase(amount=100))["customer_id"]
    order = await new_order(customers_api, who)
    cancelled = data(await customers_api.post(f"/api/database/orders/{order['id']}/cancel", {}))
    assert cancelled["status"] == "cancelled"
    listed = data(
        await customers_api.get("/api/database/orders", customer_id=who, status="cancelled")
    )
    assert [o["id"] for o in listed] == [order["id"]]
    refused = await api.post(
        "/api/payments/purchase",
        {
            "amount": 100,
            "currency": "USD",
            "customer_id": who,
            "order_id": order["id"],
            "payment_method": {
                "type": "card",
                "number": "4242424242424242",
                "exp_month": 12,
                "exp_year": 2034,
                "cvc": "123",
            },
        },
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "order_not_pending"


async def test_unknown_ids_are_404(api: Api, customers_api: Api) -> None:
    for response in (
        await customers_api.get(f"/api/database/orders/{uuid.uuid4()}"),
        await customers_api.post(f"/api/database/orders/{uuid.uuid4()}/cancel", {}),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["param"] == "order_id"
    unknown_customer = {"customer_id": str(uuid.uuid4()), "amount": 100, "currency": "USD"}
    response = await customers_api.post("/api/database/orders", unknown_customer)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["param"] == "customer_id"


GOOD = {"customer_id": str(uuid.uuid4()), "amount": 100, "currency": "USD"}
BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({**GOOD, "amount": 0}, "amount"),
    ({**GOOD, "amount": 10.5}, "amount"),
    ({**GOOD, "amount": "100"}, "amount"),
    ({**GOOD, "currency": "XYZ"}, "currency"),
    ({**GOOD, "customer_id": INJECTION}, "customer_id"),
    ({**GOOD, "description": "x" * 1001}, "description"),
    ({**GOOD, "metadata": {"k" * 41: "v"}}, "metadata"),
    ({**GOOD, "status": "paid"}, "status"),
    ({k: v for k, v in GOOD.items() if k != "currency"}, "currency"),
]


@pytest.mark.parametrize(("body", "param"), BAD_BODIES)
async def test_a_bad_body_is_a_400_naming_the_field(
    customers_api: Api, body: dict[str, Any], param: str
) -> None:
    response = await customers_api.post("/api/database/orders", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


BAD_QUERIES: list[tuple[str, dict[str, Any], str]] = [
    ("/api/database/orders", {"status": INJECTION}, "status"),
    ("/api/database/orders", {"status": "open"}, "status"),
    ("/api/database/orders", {"customer_id": "1 OR 1=1"}, "customer_id"),
    ("/api/database/orders", {"limit": 101}, "limit"),
    ("/api/database/orders", {"starting_after": str(uuid.uuid4())}, "starting_after"),
    (
        "/api/database/orders",
        {"created_gte": "2026-02-01T00:00:00Z", "created_lt": "2026-01-01T00:00:00Z"},
        "created_lt",
    ),
    ("/api/database/orders", {"sort": "amount"}, "sort"),
    ("/api/database/orders/not-a-uuid", {}, "order_id"),
]


@pytest.mark.parametrize(("path", "params", "param"), BAD_QUERIES)
async def test_a_bad_query_is_a_400_naming_the_parameter(
    customers_api: Api, path: str, params: dict[str, Any], param: str
) -> None:
    response = await customers_api.get(path, **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/database/orders"),
        ("get", "/api/database/orders"),
        ("get", f"/api/database/orders/{uuid.uuid4()}"),
        ("post", f"/api/database/orders/{uuid.uuid4()}/cancel"),
    ],
)
async def test_a_key_without_the_customers_scope_is_refused(
    api: Api, method: str, path: str
) -> None:
    if method == "post":
        response = await api.post(path, GOOD)
    else:
        response = await api.get(path)
    assert response.status_code == 403, response.text
