"""Card data that may cross process boundaries but never reach a log, a trace or a table.

`CardDetails` holds the full number and CVC only for the gateway call; its repr is redacted and
its only durable projection is `CardSummary` (brand, BIN, last4, expiry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schema.cards import expiry_passed, luhn_valid

__all__ = [
    "CardDetails",
    "CardSummary",
    "CardToken",
    "card_brand",
    "expiry_passed",
    "luhn_valid",
]


def card_brand(number: str) -> str:
    """The card network guessed from the number's prefix (IIN ranges)."""
    two, four = int(number[:2]), int(number[:4])
    six = int(number[:6])
    if number.startswith("4"):
        return "visa"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "mastercard"
    if two in (34, 37):
        return "amex"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3]) <= 649:
        return "discover"
    if 3528 <= four <= 3589:
        return "jcb"
    if two == 36 or 300 <= int(number[:3]) <= 305 or two in (38, 39):
        return "diners"
    if number.startswith("62") or 622126 <= six <= 622925:
        return "unionpay"
    return "unknown"


@dataclass(frozen=True, slots=True)
class CardSummary:
    """What may be stored and returned about a card."""

    brand: str
    bin: str
    last4: str
    exp_month: int
    exp_year: int

    def public(self) -> dict[str, Any]:
        """The API's payment_method object: brand, last4 and expiry only."""
        return {
            "type": "card",
            "brand": self.brand,
            "last4": self.last4,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
        }

    def stored(self) -> dict[str, Any]:
        """The payment_method column: the public fields plus the BIN."""
        return {**self.public(), "bin": self.bin}


@dataclass(frozen=True, slots=True)
class CardDetails:
    """A full card, alive only between the API edge and the gateway call."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str | None = field(default=None, repr=False)

    def summary(self) -> CardSummary:
        return CardSummary(
            brand=card_brand(self.number),
            bin=self.number[:6],
            last4=self.number[-4:],
            exp_month=self.exp_month,
            exp_year=self.exp_year,
        )

    def __repr__(self) -> str:
        return f"CardDetails(****{self.number[-4:]}, {self.exp_month:02d}/{self.exp_year})"


@dataclass(frozen=True, slots=True)
class CardToken:
    """A reference to a card the gateway already holds (sandbox tokens such as ``tok_visa``)."""

    token: str
