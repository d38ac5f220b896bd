"""Billing periods by calendar arithmetic, in UTC.

Period n of a subscription runs from `at(n)` to `at(n + 1)`, each counted from the billing
anchor (never from the previous period), so a monthly subscription anchored on Jan 31 bills
Feb 28 (29 in a leap year), then Mar 31: the anchor's day is kept whenever the month has it.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from engine.plans.states import BillingInterval


def _add_months(anchor: datetime, months: int) -> datetime:
    year, month = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def period_boundary(
    anchor: datetime, interval: BillingInterval, interval_count: int, index: int
) -> datetime:
    """The start of period `index` (0 starts at the anchor)."""
    steps = interval_count * index
    if interval is BillingInterval.DAY:
        return anchor + timedelta(days=steps)
    if interval is BillingInterval.WEEK:
        return anchor + timedelta(weeks=steps)
    if interval is BillingInterval.MONTH:
        return _add_months(anchor, steps)
    return _add_months(anchor, 12 * steps)
