"""Partition planning and merging: slices tile the range exactly, bad ranges name their field,
merged partials equal the whole whatever the split, and the finished summary's rates and top
customers follow from the sums."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest
from pydantic import SecretStr

from engine.errors import InvalidRequest
from engine.jobs.partials import SummaryPartial, Totals, finish, merge
from engine.jobs.ranges import MAX_RANGE_DAYS, SummaryRange, plan_partitions
from engine.jobs.summary import read_partition
from tests.summary_rows import insert_customers, insert_payments


@pytest.mark.parametrize("count", [1, 2, 3, 7, 31, 64])
def test_partitions_tile_the_range(count: int) -> None:
    span = SummaryRange.checked(date(2026, 2, 1), date(2026, 2, 28))
    parts = plan_partitions(span, count)
    assert len(parts) == count
    assert parts[0].start == datetime(2026, 2, 1, tzinfo=UTC)
    assert parts[-1].end == datetime(2026, 3, 1, tzinfo=UTC)
    for before, after in itertools.pairwise(parts):
        assert before.end == after.start
        assert before.start < before.end
    lengths = {p.end - p.start for p in parts}
    assert max(lengths) - min(lengths) <= timedelta(microseconds=1)


def test_one_day_range_is_that_whole_day() -> None:
    span = SummaryRange.checked(date(2026, 11, 27), date(2026, 11, 27))
    assert (span.start, span.end) == (
        datetime(2026, 11, 27, tzinfo=UTC),
        datetime(2026, 11, 28, tzinfo=UTC),
    )


def test_reversed_range_names_to() -> None:
    with pytest.raises(InvalidRequest) as caught:
        SummaryRange.checked(date(2026, 11, 2), date(2026, 11, 1))
    assert caught.value.param == "to"


def test_oversize_range_names_to() -> None:
    first = date(2025, 1, 1)
    SummaryRange.checked(first, first + timedelta(days=MAX_RANGE_DAYS - 1))
    with pytest.raises(InvalidRequest) as caught:
        SummaryRange.checked(first, first + timedelta(days=MAX_RANGE_DAYS))
    assert caught.value.param == "to"


@pytest.mark.parametrize("count", [0, 1025])
def test_partition_count_is_bounded(count: int) -> None:
    span = SummaryRange.checked(date(2026, 1, 1), date(2026, 1, 1))
    with pytest.raises(InvalidRequest) as caught:
        plan_partitions(span, count)
    assert caught.value.param == "partitions"


def _partial(
    day: date, status: str, customer: UUID, amount: int, code: str | None
) -> SummaryPartial:
    captured = amount if status == "succeeded" else 0
    part = SummaryPartial(
        days={(day, "USD", status, "card"): Totals(1, amount, captured, 0, int(captured > 0), 0)},
        declines=Counter({code: 1} if code else {}),
        volumes=Counter({("USD", customer): captured}),
        rows=1,
    )
    return part


def test_merge_is_addition_in_any_order() -> None:
    alice, bob = uuid4(), uuid4()
    parts = [
        _partial(date(2026, 1, 1), "succeeded", alice, 500, None),
        _partial(date(2026, 1, 1), "succeeded", bob, 300, None),
        _partial(date(2026, 1, 2), "succeeded", bob, 400, None),
        _partial(date(2026, 1, 2), "failed", alice, 900, "insufficient_funds"),
    ]
    forward = SummaryPartial()
    for part in parts:
        merge(forward, part)
    backward = SummaryPartial()
    for part in reversed(parts):
        merge(backward, part)
    assert forward == backward
    summary = finish(forward)
    assert summary.payments == 4
    assert [(r.day, r.status, r.count, r.amount) for r in summary.days] == [
        (date(2026, 1, 1), "succeeded", 2, 800),
        (date(2026, 1, 2), "failed", 1, 900),
        (date(2026, 1, 2), "succeeded", 1, 400),
    ]
    # Bob's volume spans two partitions: only the merged sum ranks him first.
    assert [(t.rank, t.customer_id, t.volume) for t in summary.top_customers] == [
        (1, bob, 700),
        (2, alice, 500),
    ]
    assert [(d.code, d.count, d.rate) for d in summary.declines] == [
        ("insufficient_funds", 1, 0.25)
    ]


def test_processing_payments_are_not_in_decline_denominator() -> None:
    customer = uuid4()
    merged = merge(
        _partial(date(2026, 1, 1), "failed", customer, 100, "generic_decline"),
        _partial(date(2026, 1, 1), "processing", customer, 100, None),
    )
    assert finish(merged).declines[0].rate == 1.0


async def test_partitions_add_up_to_the_whole_range(migrated_dsn: str) -> None:
    conn = await asyncpg.connect(migrated_dsn)
    try:
        customers = await insert_customers(conn, tag=uuid4().hex[:8], count=50)
        await insert_payments(
            conn, customers=customers, first=date(2003, 5, 1), days=3, count=3_000
        )
    finally:
        await conn.close()
    span = SummaryRange.checked(date(2003, 5, 1), date(2003, 5, 3))
    dsn = SecretStr(migrated_dsn)
    whole = await read_partition(dsn, plan_partitions(span, 1)[0])
    split = SummaryPartial()
    for part in plan_partitions(span, 7):
        merge(split, await read_partition(dsn, part))
    assert whole.rows == split.rows == 3_000
    assert finish(whole) == finish(split)
    # A day outside the range reads nothing.
    outside = SummaryRange.checked(date(2003, 5, 4), date(2003, 5, 4))
    assert (await read_partition(dsn, plan_partitions(outside, 1)[0])).rows == 0
