"""Every sandbox test card and token: declines are 402 card errors, recorded as failed."""

from __future__ import annotations

import pytest

from tests.factories import Api, payment_body

DECLINES = [
    ("4000000000000002", "generic_decline"),
    ("4000000000009995", "insufficient_funds"),
    ("4000000000000069", "expired_card"),
    ("4000000000000127", "incorrect_cvc"),
    ("4000000000000119", "processing_error"),
]

TOKENS = [
    ("tok_chargeDeclined", "generic_decline"),
    ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ("tok_chargeDeclinedExpiredCard", "expired_card"),
    ("tok_chargeDeclinedIncorrectCvc", "incorrect_cvc"),
    ("tok_chargeDeclinedProcessingError", "processing_error"),
]


@pytest.mark.parametrize("operation", ["purchase", "authorize"])
@pytest.mark.parametrize(("number", "decline_code"), DECLINES)
async def test_declining_card(api: Api, operation: str, number: str, decline_code: str) -> None:
    response = await api.post(f"/api/payments/{operation}", payment_body(number=number))
    assert response.status_code == 402, response.text
    error = response.json()["error"]
    assert error["type"] == "card_error"
    assert error["code"] == "card_declined"
    assert error["decline_code"] == decline_code
    payment = (await api.get(f"/api/payments/{error['payment_id']}")).json()["data"]
    assert payment["status"] == "failed"
    assert payment["failure_code"] == "card_declined"
    assert payment["amount_captured"] == 0
    assert payment["payment_method"]["last4"] == number[-4:]


@pytest.mark.parametrize(("token", "decline_code"), TOKENS)
async def test_declining_token(api: Api, token: str, decline_code: str) -> None:
    body = payment_body()
    body["payment_method"] = {"type": "token", "token": token}
    response = await api.post("/api/payments/purchase", body)
    assert response.status_code == 402
    assert response.json()["error"]["decline_code"] == decline_code


async def test_approving_token_records_the_card_summary(api: Api) -> None:
    body = payment_body()
    body["payment_method"] = {"type": "token", "token": "tok_mastercard"}
    response = await api.post("/api/payments/purchase", body)
    assert response.status_code == 200
    assert response.json()["data"]["payment_method"]["brand"] == "mastercard"
    assert response.json()["data"]["payment_method"]["last4"] == "4444"


async def test_other_valid_cards_approve(api: Api) -> None:
    for number in ("5555555555554444", "378282246310005"):
        response = await api.post("/api/payments/purchase", payment_body(number=number))
        assert response.status_code == 200, number
