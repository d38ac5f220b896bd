"""Proration: what a change of price or quantity in the middle of a period is worth, to the
second and to the minor unit.

The unused part of the current period at the old price is credited and the same part at the
new price is charged, each rounded half up to the minor unit on its own (as an invoice shows
them, line by line); the invoice's amount is their difference.
"""

from __future__ import annotations

from datetime import datetime

from engine.subscriptions.models import InvoiceLine


def share(amount: int, part_s: int, whole_s: int) -> int:
    """`amount` times part over whole, rounded half up, in integers (never a float)."""
    return (2 * amount * part_s + whole_s) // (2 * whole_s)


def proration_lines(
    *,
    old_total: int,
    new_total: int,
    new_quantity: int,
    old_quantity: int,
    start: datetime,
    end: datetime,
    now: datetime,
    credit_cap: int | None = None,
) -> list[InvoiceLine]:
    """The credit for the unused time at the old price (at most `credit_cap`: what was paid
    for the period less earlier credits) and the charge for it at the new one (lines of zero
    left out)."""
    whole_s = int((end - start).total_seconds())
    left_s = min(max(int((end - now).total_seconds()), 0), whole_s)
    credit = share(old_total, left_s, whole_s)
    if credit_cap is not None:
        credit = min(credit, credit_cap)
    charge = share(new_total, left_s, whole_s)
    lines = []
    if credit:
        lines.append(
            InvoiceLine("Unused time at the previous price", -credit, old_quantity, now, end, True)
        )
    if charge:
        lines.append(
            InvoiceLine("Remaining time at the new price", charge, new_quantity, now, end, True)
        )
    return lines
