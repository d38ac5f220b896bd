"""The in-memory history the rules read: attempts age out of the longest window, a payment
recorded twice counts once, and the number of customers kept is bounded (least recently
active evicted first)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from engine.compliance.history import AttemptHistory
from engine.compliance.rules import Attempt, minor_units

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def attempt(at: datetime, amount: int = 100) -> Attempt:
    return Attempt(uuid4(), at, amount, "USD", None)


def test_attempts_age_out_and_a_payment_counts_once() -> None:
    history = AttemptHistory(memory=timedelta(hours=1), max_customers=10)
    customer = uuid4()
    old, new = attempt(T0), attempt(T0 + timedelta(minutes=30))
    history.record(customer, old)
    history.record(customer, new)
    history.record(customer, new)
    assert list(history.recent(customer, T0 + timedelta(minutes=45))) == [old, new]
    assert list(history.recent(customer, T0 + timedelta(minutes=61))) == [new]
    assert not history.recent(uuid4(), T0)


def test_customers_are_bounded_least_recently_active_first() -> None:
    history = AttemptHistory(memory=timedelta(days=1), max_customers=100)
    customers = [uuid4() for _ in range(150)]
    for i, customer in enumerate(customers):
        history.record(customer, attempt(T0 + timedelta(seconds=i)))
    assert len(history) == 100
    assert not history.recent(customers[0], T0 + timedelta(minutes=5))
    assert len(history.recent(customers[-1], T0 + timedelta(minutes=5))) == 1


def test_thresholds_follow_the_currency_exponent() -> None:
    assert [minor_units(10_000, c) for c in ("USD", "JPY", "KWD", "CLF")] == [
        1_000_000,
        10_000,
        10_000_000,
        100_000_000,
    ]
