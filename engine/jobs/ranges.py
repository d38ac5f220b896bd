"""A summary's date range and its partitions.

A range is whole UTC days, both ends included (`--from 2026-11-01 --to 2026-11-30` is
November). It is bounded (`MAX_RANGE_DAYS`) so no request can ask for an unbounded scan. A
partition is a half-open time slice `[start, end)` of the range: the slices tile the range
exactly, so every row falls in exactly one partition and partial aggregates add up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from engine.errors import InvalidRequest

MAX_RANGE_DAYS = 366
MAX_PARTITIONS = 1024


@dataclass(frozen=True, slots=True)
class SummaryRange:
    """Whole UTC days from `first` to `last`, both included."""

    first: date
    last: date

    @classmethod
    def checked(cls, first: date, last: date) -> SummaryRange:
        """A range from request input; reversed or oversize ranges name the field at fault."""
        if last < first:
            raise InvalidRequest("`to` is before `from`", param="to")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise InvalidRequest(f"a range covers at most {MAX_RANGE_DAYS} days", param="to")
        return cls(first, last)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def start(self) -> datetime:
        """The first instant of the range (UTC midnight of `first`)."""
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The instant just past the range (UTC midnight after `last`)."""
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Partition:
    """One bounded slice of a range: rows with `start <= created_at < end`."""

    index: int
    start: datetime
    end: datetime


def plan_partitions(span: SummaryRange, count: int) -> list[Partition]:
    """`count` slices of equal length (to the microsecond) that tile `span` exactly."""
    if not 1 <= count <= MAX_PARTITIONS:
        raise InvalidRequest(f"partitions must be 1 to {MAX_PARTITIONS}", param="partitions")
    total_us = span.days * 86_400_000_000
    bounds = [span.start + timedelta(microseconds=total_us * i // count) for i in range(count)]
    bounds.append(span.end)
    return [Partition(i, bounds[i], bounds[i + 1]) for i in range(count)]
