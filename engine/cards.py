"""Card data that may cross process boundaries but never reach a log, a trace or a table.

`CardDetails` holds the full number and CVC only for the gateway call; its repr is redacted and
its durable projection is `CardSummary` (brand, BIN, last4, expiry); what a payment stores of it
is `CardSummary.stored` (brand, BIN, last4 and fingerprint: the expiry stays in the vault).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schema.cards import expiry_passed, luhn_valid

__all__ = [
    "CardDetails",
    "CardSummary",
    "CardToken",
    "WalletToken",
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
    """What the vault of saved cards may store about a card beside its sealed number."""

    brand: str
    bin: str
    last4: str
    exp_month: int
    exp_year: int

    def stored(self, fingerprint: str | None) -> dict[str, Any]:
        """A payment's `payment_method` column: brand, BIN, last4 and the card's fingerprint
        (the vault's, so a payment matches the saved card it came from); never the expiry."""
        return {
            "type": "card",
            "brand": self.brand,
            "bin": self.bin,
            "last4": self.last4,
            "fingerprint": fingerprint,
        }


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


@dataclass(frozen=True, slots=True, repr=False)
class WalletToken(CardToken):
    """A wallet's network token (Apple Pay, Google Pay). It stands for a card and is charged
    as a token is, so it is a `CardToken`; unlike a gateway's `tok_…` it is kept out of every
    repr, log and row like a card number, and the gateway tells which card it stands for."""

    wallet: str

    def stored(self, card: CardSummary | None, fingerprint: str | None) -> dict[str, Any]:
        """A payment's `payment_method` column: the wallet, and the brand and last4 of the
        card its token stands for once the gateway has said (never the expiry)."""
        summary: dict[str, Any] = {"type": "wallet", "wallet": self.wallet}
        if card is not None:
            summary |= {"brand": card.brand, "last4": card.last4}
        return summary | {"fingerprint": fingerprint}

    def __repr__(self) -> str:
        return f"WalletToken({self.wallet}, ****)"
