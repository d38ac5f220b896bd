"""Amounts as an operator types them: major units ("12.50"), turned into minor units of the
payment's currency exactly. More decimals than the currency has is refused, never rounded."""

from __future__ import annotations

import re

from engine.errors import InvalidRequest
from engine.money import exponent

_AMOUNT = re.compile(r"(\d{1,15})(?:\.(\d{1,4}))?")


def minor_units(text: str, currency: str, field: str = "amount") -> int | None:
    """`text` in minor units of `currency`; None when blank (the whole amount, or no bound).
    Refusals name `field`, the form's input."""
    text = text.strip()
    if not text:
        return None
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise InvalidRequest(f"{field}: give a number such as 12.50", param=field)
    whole, fraction = match.group(1), match.group(2) or ""
    places = exponent(currency)
    if len(fraction) > places:
        raise InvalidRequest(
            f"{field}: {currency} has {places} decimal places, not {len(fraction)}", param=field
        )
    # The digits of the major units followed by exactly `places` digits are the minor units.
    value = int(whole + fraction.ljust(places, "0"))
    if value <= 0:
        raise InvalidRequest(f"{field}: must be more than zero", param=field)
    return value
