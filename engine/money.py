"""Money: an integer amount of a currency's minor unit, never a float.

The ISO 4217 exponent of each currency decides what one unit is (JPY 0, USD 2, KWD 3). Amounts
arrive in minor units already, so nothing here rounds; anything that is not a positive integer of
a known currency is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

from schema.currencies import CURRENCY_EXPONENTS, is_currency

__all__ = ["CURRENCY_EXPONENTS", "Money", "exponent", "is_currency"]


# Active ISO 4217 codes and their minor-unit exponents.
def exponent(code: str) -> int:
    """The number of decimal places of one major unit of `code`."""
    return CURRENCY_EXPONENTS[code]


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units of an ISO 4217 currency. Invariant: a known currency and an
    integer amount (never bool or float); sign is the caller's business."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise TypeError(f"Money amount must be an int of minor units, got {self.amount!r}")
        if not is_currency(self.currency):
            raise ValueError(f"unknown currency {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def format(self) -> str:
        """Human form for logs and messages, e.g. ``12.50 USD``; never parsed back."""
        places = exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        whole, frac = divmod(abs(self.amount), 10**places)
        return (
            f"{sign}{whole}.{frac:0{places}d} {self.currency}"
            if places
            else (f"{sign}{whole} {self.currency}")
        )
