"""Bad input is a 400 that names the field, never a 500 and never a silent fix-up."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import Api, card, payment_body


def _with(**changes: Any) -> dict[str, Any]:
    body = payment_body()
    body.update(changes)
    return body


CASES: list[tuple[str, dict[str, Any] | str, str]] = [
    ("float amount", _with(amount=10.5), "amount"),
    ("float amount that looks whole", _with(amount=10.0), "amount"),
    ("string amount", _with(amount="1000"), "amount"),
    ("bool amount", _with(amount=True), "amount"),
    ("zero amount", _with(amount=0), "amount"),
    ("negative amount", _with(amount=-5), "amount"),
    ("amount over the maximum", _with(amount=100_000_000), "amount"),
    ("missing amount", {k: v for k, v in payment_body().items() if k != "amount"}, "amount"),
    ("unknown currency", _with(currency="XYZ"), "currency"),
    ("currency not a string", _with(currency=840), "currency"),
    ("bad Luhn", _with(payment_method=card("4242424242424241")), "payment_method.number"),
    ("letters in number", _with(payment_method=card("4242abcd42424242")), "payment_method.number"),
    ("expired card", _with(payment_method=card(exp_year=2020)), "payment_method.exp_year"),
    ("month 13", _with(payment_method=card(exp_month=13)), "payment_method.exp_month"),
    ("bad cvc", _with(payment_method=card(cvc="12")), "payment_method.cvc"),
    (
        "unknown method type",
        _with(payment_method={"type": "iban", "number": "x"}),
        "payment_method",
    ),
    ("bad token", _with(payment_method={"type": "token", "token": "visa"}), "payment_method.token"),
    ("too many metadata keys", _with(metadata={f"k{i}": "v" for i in range(51)}), "metadata"),
    ("metadata key too long", _with(metadata={"k" * 41: "v"}), "metadata"),
    ("metadata value too long", _with(metadata={"k": "v" * 501}), "metadata"),
    ("metadata value not a string", _with(metadata={"k": 1}), "metadata.k"),
    ("unknown field", _with(amout=5), "amout"),
    ("NUL in description", _with(description="a\x00b"), "description"),
    ("NUL in metadata", _with(metadata={"k": "a\x00"}), "metadata.k"),
    (
        "both customer and customer_id",
        _with(customer_id="6f1c7a52-58a4-4d0c-9d1e-0a3a8a1b2c3d"),
        "customer",
    ),
    ("bad email", _with(customer={"email": "not-an-email"}), "customer.email"),
    (
        "customer_id not a uuid",
        {**{k: v for k, v in payment_body().items() if k != "customer"}, "customer_id": "nope"},
        "customer_id",
    ),
]


@pytest.mark.parametrize(("name", "body", "param"), CASES, ids=[c[0] for c in CASES])
async def test_bad_purchase_is_400_naming_the_field(
    api: Api, name: str, body: Any, param: str
) -> None:
    response = await api.post("/api/payments/purchase", body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert response.json()["success"] is False
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error
    assert "4242424242424241" not in response.text


async def test_malformed_json_is_400(api: Api) -> None:
    response = await api.http.post(
        "/api/payments/purchase",
        content=b'{"amount": 10,',
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_empty_body_is_400(api: Api) -> None:
    response = await api.http.post("/api/payments/purchase", headers=api.headers())
    assert response.status_code == 400


async def test_bad_capture_inputs(api: Api) -> None:
    bad_id = await api.post("/api/payments/capture", {"payment_id": "x"})
    assert bad_id.status_code == 400
    assert bad_id.json()["error"]["param"] == "payment_id"
    bad_amount = await api.post(
        "/api/payments/capture",
        {"payment_id": "6f1c7a52-58a4-4d0c-9d1e-0a3a8a1b2c3d", "amount": 1.5},
    )
    assert bad_amount.status_code == 400
    assert bad_amount.json()["error"]["param"] == "amount"
    bad_reason = await api.post(
        "/api/payments/refund",
        {"payment_id": "6f1c7a52-58a4-4d0c-9d1e-0a3a8a1b2c3d", "reason": "because"},
    )
    assert bad_reason.status_code == 400
    assert bad_reason.json()["error"]["param"] == "reason"


async def test_oversized_idempotency_key_is_400(api: Api) -> None:
    response = await api.post("/api/payments/purchase", payment_body(), idempotency_key="k" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"


async def test_unknown_route_and_method_use_the_envelope(api: Api) -> None:
    missing = await api.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["success"] is False
    wrong = await api.http.delete("/api/payments/purchase", headers=api.headers())
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
