"""Partial aggregates of a transaction summary, how they merge, and the summary they make.

A partition's reader returns a `SummaryPartial`; the driver folds them together with `merge`
as they arrive, so it holds one partial, not one per partition. Every field is a sum keyed by a
group, so merging is addition and the order of arrival does not matter. Per-customer volumes are
kept whole until `finish`: a customer's payments may fall in several time slices, so a
partition's own top list could miss the true top customers.

Only payments count (root `transactions` rows: purchases and authorizations); captures,
voids and refunds are operations on them and show in their payment's balances.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

TOP_CUSTOMERS = 10


@dataclass(slots=True)
class Totals:
    """Counts and minor-unit sums of one group of payments."""

    count: int = 0
    amount: int = 0
    captured: int = 0
    refunded: int = 0
    captured_count: int = 0
    refunded_count: int = 0

    def add(self, other: Totals) -> None:
        self.count += other.count
        self.amount += other.amount
        self.captured += other.captured
        self.refunded += other.refunded
        self.captured_count += other.captured_count
        self.refunded_count += other.refunded_count


DayKey = tuple[date, str, str, str]  # day (UTC), currency, status, method


@dataclass(slots=True)
class SummaryPartial:
    """What one partition (or several, merged) holds."""

    days: dict[DayKey, Totals] = field(default_factory=dict)
    declines: Counter[str] = field(default_factory=Counter)
    volumes: Counter[tuple[str, UUID]] = field(default_factory=Counter)
    rows: int = 0


def merge(into: SummaryPartial, part: SummaryPartial) -> SummaryPartial:
    """Add `part` into `into` (in place) and return it."""
    for key, totals in part.days.items():
        into.days.setdefault(key, Totals()).add(totals)
    into.declines.update(part.declines)
    into.volumes.update(part.volumes)
    into.rows += part.rows
    return into


@dataclass(frozen=True, slots=True)
class DayRow:
    day: date
    currency: str
    status: str
    method: str
    count: int
    amount: int
    captured: int
    refunded: int


@dataclass(frozen=True, slots=True)
class RefundRow:
    """Per currency: of the payments that captured money, how many and how much came back."""

    currency: str
    captured_count: int
    refunded_count: int
    captured: int
    refunded: int
    count_rate: float
    amount_rate: float


@dataclass(frozen=True, slots=True)
class DeclineRow:
    """A decline (or failure) code: its count and its share of every settled payment."""

    code: str
    count: int
    rate: float


@dataclass(frozen=True, slots=True)
class TopCustomer:
    currency: str
    rank: int
    customer_id: UUID
    volume: int


@dataclass(frozen=True, slots=True)
class Summary:
    """The finished summary: the tables the job writes."""

    days: list[DayRow]
    refunds: list[RefundRow]
    declines: list[DeclineRow]
    top_customers: list[TopCustomer]
    payments: int


def _rate(part: int, whole: int) -> float:
    # A rate is a ratio, not money: a float is the honest type.
    return part / whole if whole else 0.0


def finish(partial: SummaryPartial, *, top: int = TOP_CUSTOMERS) -> Summary:
    """The summary of everything merged into `partial`."""
    days = [
        DayRow(d, cur, st, method, t.count, t.amount, t.captured, t.refunded)
        for (d, cur, st, method), t in sorted(partial.days.items())
    ]
    by_currency: dict[str, Totals] = {}
    for (_, currency, _, _), totals in partial.days.items():
        by_currency.setdefault(currency, Totals()).add(totals)
    refunds = [
        RefundRow(
            cur,
            t.captured_count,
            t.refunded_count,
            t.captured,
            t.refunded,
            _rate(t.refunded_count, t.captured_count),
            _rate(t.refunded, t.captured),
        )
        for cur, t in sorted(by_currency.items())
    ]
    # Payments still processing have no outcome yet: they are not in the denominator.
    settled = sum(t.count for (_, _, st, _), t in partial.days.items() if st != "processing")
    declines = [
        DeclineRow(code, n, _rate(n, settled))
        for code, n in sorted(partial.declines.items(), key=lambda item: (-item[1], item[0]))
    ]
    ranked: dict[str, list[tuple[UUID, int]]] = {}
    for (currency, customer), volume in partial.volumes.items():
        if volume > 0:
            ranked.setdefault(currency, []).append((customer, volume))
    top_customers = [
        TopCustomer(currency, rank, customer, volume)
        for currency in sorted(ranked)
        for rank, (customer, volume) in enumerate(
            sorted(ranked[currency], key=lambda cv: (-cv[1], str(cv[0])))[:top], start=1
        )
    ]
    return Summary(days, refunds, declines, top_customers, partial.rows)
