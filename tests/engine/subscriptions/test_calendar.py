"""Periods by calendar arithmetic from the anchor, in UTC: the anchor's day is kept whenever
the month has it (Jan 31 bills Feb 28, or 29 in a leap year, then Mar 31)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.plans.states import BillingInterval
from engine.subscriptions.calendar import period_boundary

M = BillingInterval.MONTH


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 8, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("anchor", "interval", "count", "index", "expected"),
    [
        (at(2027, 1, 31), M, 1, 1, at(2027, 2, 28)),
        (at(2027, 1, 31), M, 1, 2, at(2027, 3, 31)),
        (at(2028, 1, 31), M, 1, 1, at(2028, 2, 29)),
        (at(2028, 1, 31), M, 1, 3, at(2028, 4, 30)),
        (at(2027, 1, 31), M, 3, 1, at(2027, 4, 30)),
        (at(2027, 11, 30), M, 1, 3, at(2028, 2, 29)),
        (at(2027, 12, 15), M, 1, 1, at(2028, 1, 15)),
        (at(2028, 2, 29), BillingInterval.YEAR, 1, 1, at(2029, 2, 28)),
        (at(2028, 2, 29), BillingInterval.YEAR, 1, 4, at(2032, 2, 29)),
        (at(2027, 3, 1), BillingInterval.WEEK, 2, 3, at(2027, 4, 12)),
        (at(2027, 12, 31), BillingInterval.DAY, 1, 1, at(2028, 1, 1)),
        (at(2027, 1, 31), M, 1, 0, at(2027, 1, 31)),
    ],
)
def test_period_boundaries(
    anchor: datetime, interval: BillingInterval, count: int, index: int, expected: datetime
) -> None:
    assert period_boundary(anchor, interval, count, index) == expected


def test_a_year_of_months_from_jan_31() -> None:
    days = [period_boundary(at(2027, 1, 31), M, 1, i).day for i in range(13)]
    assert days == [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31]
