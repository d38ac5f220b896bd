"""Card-number rules the API checks at the edge: Luhn and expiry."""

from __future__ import annotations

from datetime import date


def luhn_valid(number: str) -> bool:
    """Whether an ASCII digit string passes the Luhn checksum."""
    if not (number.isascii() and number.isdigit()):
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def expiry_passed(exp_month: int, exp_year: int, today: date) -> bool:
    """A card is valid through the last day of its expiry month."""
    return (exp_year, exp_month) < (today.year, today.month)
