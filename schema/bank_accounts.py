"""Bank-account rules the API checks at the edge: the ABA routing number checksum."""

from __future__ import annotations

_ABA_WEIGHTS = (3, 7, 1, 3, 7, 1, 3, 7, 1)


def routing_number_valid(number: str) -> bool:
    """Whether `number` is nine ASCII digits passing the ABA checksum (3-7-1 weights, the
    weighted sum a multiple of ten)."""
    if len(number) != 9 or not (number.isascii() and number.isdigit()):
        return False
    return sum(w * int(d) for w, d in zip(_ABA_WEIGHTS, number, strict=True)) % 10 == 0
