"""Money is integer minor units of a known currency; card data never shows its secrets.

Covers `engine/money.py` (type checks, ISO 4217 exponents, formatting, currency mixing) and
`engine/cards.py` (Luhn, brand detection, redacted repr, the public projection without the BIN).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from engine.cards import CardDetails, CardSummary, card_brand, luhn_valid
from engine.money import Money, exponent, is_currency

VISA = "4242424242424242"
CVC = "987"


@pytest.mark.parametrize("amount", [10.0, 10.5, True, False, Decimal(10), "10", None])
def test_money_rejects_anything_but_an_int(amount: Any) -> None:
    with pytest.raises(TypeError, match="minor units"):
        Money(amount, "USD")


@pytest.mark.parametrize("currency", ["XYZ", "usd", "US", "", "USDX"])
def test_money_rejects_unknown_currency(currency: str) -> None:
    assert not is_currency(currency)
    with pytest.raises(ValueError, match="unknown currency"):
        Money(100, currency)


@pytest.mark.parametrize(("currency", "places"), [("JPY", 0), ("USD", 2), ("EUR", 2), ("KWD", 3)])
def test_currency_exponents(currency: str, places: int) -> None:
    assert exponent(currency) == places


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(1250, "USD"), "12.50 USD"),
        (Money(5, "USD"), "0.05 USD"),
        (Money(0, "USD"), "0.00 USD"),
        (Money(-5, "USD"), "-0.05 USD"),
        (Money(-1250, "USD"), "-12.50 USD"),
        (Money(1250, "JPY"), "1250 JPY"),
        (Money(-7, "JPY"), "-7 JPY"),
        (Money(1234, "KWD"), "1.234 KWD"),
        (Money(5, "KWD"), "0.005 KWD"),
    ],
)
def test_format(money: Money, text: str) -> None:
    assert money.format() == text


def test_arithmetic_keeps_currency_and_refuses_mixing() -> None:
    assert Money(700, "EUR") + Money(300, "EUR") == Money(1000, "EUR")
    assert Money(700, "EUR") - Money(300, "EUR") == Money(400, "EUR")
    with pytest.raises(ValueError, match="cannot combine"):
        Money(1, "EUR") + Money(1, "USD")
    with pytest.raises(ValueError, match="cannot combine"):
        Money(1, "EUR") - Money(1, "USD")


def test_money_is_frozen() -> None:
    money = Money(100, "USD")
    with pytest.raises(dataclasses.FrozenInstanceError):
        money.amount = 200  # type: ignore[misc]


@pytest.mark.parametrize(
    "number", [VISA, "5555555555554444", "378282246310005", "6011111111111117"]
)
def test_luhn_accepts_valid_numbers(number: str) -> None:
    assert luhn_valid(number)


@pytest.mark.parametrize(
    "number", ["4242424242424241", "5555555555554445", "4242 4242 4242 4242", "", "42a2", "-42"]
)
def test_luhn_rejects_invalid_numbers(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    "number",
    ["4242424242424\u00b242", "\u0664\u0662" * 8],
    ids=["superscript-two", "arabic-indic-4242"],
)
def test_luhn_rejects_non_ascii_digits(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        (VISA, "visa"),
        ("4000056655665556", "visa"),
        ("5555555555554444", "mastercard"),
        ("5105105105105100", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("371449635398431", "amex"),
        ("340000000000009", "amex"),
        ("6011111111111117", "discover"),
        ("9999999999999995", "unknown"),
    ],
)
def test_card_brand(number: str, brand: str) -> None:
    assert card_brand(number) == brand


def _card(number: str = VISA, cvc: str | None = CVC) -> CardDetails:
    return CardDetails(number=number, exp_month=3, exp_year=2031, cvc=cvc)


def test_card_details_repr_hides_number_and_cvc() -> None:
    card = _card()
    for text in (repr(card), str(card), f"{card}", f"{card!r}", repr([card]), repr({"c": card})):
        assert VISA not in text
        assert VISA[:6] not in text
        assert CVC not in text
    assert repr(card) == "CardDetails(****4242, 03/2031)"


def test_card_summary_projection() -> None:
    summary = _card("5555555555554444").summary()
    assert summary == CardSummary(
        brand="mastercard", bin="555555", last4="4444", exp_month=3, exp_year=2031
    )
    assert repr(summary).count("5555555555554444") == 0


def test_a_stored_card_keeps_brand_bin_last4_and_fingerprint_but_never_the_expiry() -> None:
    stored = _card().summary().stored("fp_1")
    assert stored == {
        "type": "card",
        "brand": "visa",
        "bin": "424242",
        "last4": "4242",
        "fingerprint": "fp_1",
    }
    assert "exp_month" not in stored
    assert "exp_year" not in stored
    assert VISA not in repr(stored)


def test_payment_transition_table_matches_the_design() -> None:
    from engine.payments.states import PaymentStatus as S
    from engine.payments.states import can_transition

    allowed = {(a, b) for a in S for b in S if can_transition(a, b)}
    assert allowed == {
        (S.PROCESSING, S.AUTHORIZED),
        (S.PROCESSING, S.SUCCEEDED),
        (S.PROCESSING, S.FAILED),
        (S.AUTHORIZED, S.CAPTURED),
        (S.AUTHORIZED, S.VOIDED),
        (S.AUTHORIZED, S.EXPIRED),
        (S.CAPTURED, S.REFUNDED),
        (S.SUCCEEDED, S.REFUNDED),
    }
