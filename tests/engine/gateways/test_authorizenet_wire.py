"""Authorize.Net's wire format without a server: amounts from minor units for every exponent,
element order as the schema's sequence, the byte-order mark, and the settings' endpoints."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from pydantic import SecretStr

from engine.cards import CardDetails, CardToken
from engine.gateways.authorizenet import wire
from engine.gateways.authorizenet.settings import (
    PRODUCTION_URL,
    SANDBOX_URL,
    AuthorizeNetSettings,
)
from engine.gateways.base import ChargeRequest, OperationRequest, VerifyRequest
from engine.money import Money

AUTH = wire.authentication("login", "key")
CARD = CardDetails("4111111111111111", 3, 2031, "123")


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1234, "JPY"), "1234"),
        (Money(0, "JPY"), "0"),
        (Money(1234, "USD"), "12.34"),
        (Money(5, "USD"), "0.05"),
        (Money(100000, "EUR"), "1000.00"),
        (Money(1234, "KWD"), "1.234"),
        (Money(7, "BHD"), "0.007"),
    ],
)
def test_amounts_render_from_minor_units_with_the_currency_exponent(
    money: Money, text: str
) -> None:
    assert wire.amount_text(money) == text


def test_a_negative_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="never negative"):
        wire.amount_text(Money(-1, "USD"))


def keys_in_order(body: bytes) -> list[list[str]]:
    """Every object's keys, in the order they were serialized."""
    seen: list[list[str]] = []

    def note(pairs: list[tuple[str, object]]) -> dict[str, object]:
        seen.append([key for key, _ in pairs])
        return dict(pairs)

    json.loads(body, object_pairs_hook=note)
    return seen


def test_a_charge_serializes_in_the_schema_order() -> None:
    reference = uuid4()
    payload = wire.charge_request(
        AUTH,
        ChargeRequest(reference, Money(1050, "USD"), CARD, capture=True),
        duplicate_window_s=60,
    )
    objects = keys_in_order(wire.encode(payload))
    # Innermost objects are serialized first: the card, payment, order, setting, settings, the
    # transaction request, then the request and its root.
    assert ["name", "transactionKey"] in objects
    assert ["cardNumber", "expirationDate", "cardCode"] in objects
    assert ["invoiceNumber", "description"] in objects
    assert ["settingName", "settingValue"] in objects
    assert [
        "transactionType",
        "amount",
        "currencyCode",
        "payment",
        "order",
        "transactionSettings",
    ] in objects
    assert ["merchantAuthentication", "refId", "transactionRequest"] in objects
    request = payload["createTransactionRequest"]
    assert request["refId"] == reference.hex[:20]
    body = request["transactionRequest"]
    assert body["transactionType"] == "authCaptureTransaction"
    assert body["amount"] == "10.50"
    assert body["payment"]["creditCard"]["expirationDate"] == "2031-03"
    assert body["order"] == {
        "invoiceNumber": reference.hex[:20],
        "description": f"paygrid {reference}",
    }
    assert body["transactionSettings"]["setting"]["settingValue"] == "60"


def test_follow_ups_serialize_in_the_schema_order() -> None:
    request = OperationRequest(uuid4(), "60000000001", Money(500, "USD"), card_last4="1111")
    capture = keys_in_order(wire.encode(wire.capture_request(AUTH, request)))
    assert ["transactionType", "amount", "refTransId"] in capture
    void = keys_in_order(wire.encode(wire.void_request(AUTH, request)))
    assert ["transactionType", "refTransId"] in void
    refund_payload = wire.refund_request(AUTH, request, last4="1111", duplicate_window_s=0)
    refund = keys_in_order(wire.encode(refund_payload))
    assert [
        "transactionType",
        "amount",
        "payment",
        "refTransId",
        "order",
        "transactionSettings",
    ] in refund
    card = refund_payload["createTransactionRequest"]["transactionRequest"]["payment"]
    assert card == {"creditCard": {"cardNumber": "XXXX1111", "expirationDate": "XXXX"}}
    details = keys_in_order(wire.encode(wire.details_request(AUTH, "60000000001")))
    assert ["merchantAuthentication", "transId"] in details
    listing = keys_in_order(wire.encode(wire.unsettled_request(AUTH, 2)))
    assert ["merchantAuthentication", "sorting", "paging"] in listing
    assert ["limit", "offset"] in listing


def test_a_verification_is_a_zero_amount_authorization_and_a_token_is_opaque_data() -> None:
    verify = wire.verify_request(AUTH, VerifyRequest(uuid4(), CARD), duplicate_window_s=0)
    body = verify["createTransactionRequest"]["transactionRequest"]
    assert (body["transactionType"], body["amount"]) == ("authOnlyTransaction", "0.00")
    token = ChargeRequest(uuid4(), Money(100, "USD"), CardToken("nonce"), capture=False)
    payment = wire.charge_request(AUTH, token, duplicate_window_s=0)["createTransactionRequest"][
        "transactionRequest"
    ]["payment"]
    assert payment == {
        "opaqueData": {"dataDescriptor": "COMMON.ACCEPT.INAPP.PAYMENT", "dataValue": "nonce"}
    }


def test_answers_are_read_past_the_byte_order_mark_with_decimals_as_text() -> None:
    raw = '\ufeff{"transaction": {"settleAmount": 12.30}, "messages": {"resultCode": "Ok"}}'
    answer = wire.decode(raw.encode("utf-8"))
    assert answer["transaction"]["settleAmount"] == "12.30"
    with pytest.raises(ValueError, match="Expecting value"):
        wire.decode(b"\xef\xbb\xbf<html>")


def test_response_codes_map_to_results() -> None:
    def answer(code: str, reason: str) -> wire.TransactionAnswer:
        return wire.TransactionAnswer(code, "1", reason, "text", None)

    assert answer("1", "1").result(None).approved
    declined = answer("2", "2").result(None)
    assert (declined.approved, declined.decline_code, declined.review) == (
        False,
        "generic_decline",
        False,
    )
    assert answer("3", "8").result(None).decline_code == "expired_card"
    assert answer("3", "999").result(None).decline_code == "authorizenet_999"
    held = answer("4", "252").result(None)
    assert (held.approved, held.review) == (False, True)


@pytest.mark.parametrize(
    ("response_code", "status", "approved", "review", "code"),
    [
        ("1", "capturedPendingSettlement", True, False, None),
        ("1", "voided", True, False, None),  # approved, voided since: the call was approved
        ("1", "couldNotVoid", True, False, None),
        ("2", "declined", False, False, "generic_decline"),
        ("1", "generalError", False, False, "generic_decline"),
        ("4", "FDSPendingReview", False, True, "held_for_review"),
        ("4", "approvedReview", True, False, None),
        ("4", "capturedPendingSettlement", True, False, None),
        ("4", "voided", False, False, "review_declined"),  # declined by the review
        ("4", "failedReview", False, False, "review_declined"),
    ],
)
def test_a_transactions_status_says_what_became_of_its_call(
    response_code: str, status: str, approved: bool, review: bool, code: str | None
) -> None:
    details = wire.TransactionDetails(
        "60000000001",
        None,
        "authCaptureTransaction",
        status,
        response_code,
        "2",
        "text",
        None,
        None,
        "1111",
    )
    result = details.result()
    assert (result.approved, result.review, result.decline_code) == (approved, review, code)


def test_settings_pick_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AuthorizeNetSettings().url == SANDBOX_URL
    assert AuthorizeNetSettings(environment="production").url == PRODUCTION_URL
    monkeypatch.setenv("PAYGRID_AUTHORIZENET_ENVIRONMENT", "production")
    monkeypatch.setenv("PAYGRID_AUTHORIZENET_TRANSACTION_KEY", "k3y")
    monkeypatch.setenv("PAYGRID_AUTHORIZENET_ENDPOINT_URL", "http://127.0.0.1:9/x")
    settings = AuthorizeNetSettings()
    assert settings.url == "http://127.0.0.1:9/x"
    assert settings.transaction_key == SecretStr("k3y")
    assert "k3y" not in repr(settings)
