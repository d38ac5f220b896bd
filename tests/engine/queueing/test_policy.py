"""The retry policy: exponential delays with bounded jitter, a cap, then dead; and how each
outcome settles an item."""

from __future__ import annotations

import random
from uuid import uuid4

import pytest

from engine.queueing.policy import Outcome, RetryPolicy
from engine.queueing.states import JOB_TRANSITIONS, REPLAYABLE, JobStatus, can_transition


def test_schedule_grows_with_bounded_jitter_then_dies() -> None:
    policy = RetryPolicy(_random=random.Random(7))
    for _ in range(200):
        delays = [policy.delay_after(n) for n in range(1, 6)]
        for delay, base in zip(delays, (1, 2, 4, 8, 16), strict=True):
            assert delay is not None
            assert base * 0.8 <= delay <= base * 1.2
    assert policy.delay_after(6) is None
    assert policy.max_attempts == 6


def test_jitter_spreads_retries_and_the_cap_holds() -> None:
    policy = RetryPolicy(schedule_s=(10,), jitter=0.2, _random=random.Random(3))
    delays = [policy.delay_after(1) for _ in range(500)]
    assert all(d is not None and 8 <= d <= 12 for d in delays)
    assert len(set(delays)) > 400  # spread, not one instant
    capped = RetryPolicy(schedule_s=(100, 1000), max_delay_s=300, jitter=0)
    assert capped.delay_after(2) == 300


def test_outcomes_settle_by_the_policy() -> None:
    policy = RetryPolicy(schedule_s=(1, 2), jitter=0)
    item = uuid4()
    done = policy.settle(item, 1, Outcome.SUCCEEDED, "ignored")
    assert (done.status, done.retry_in_s, done.error) == (JobStatus.SUCCEEDED, None, None)
    refused = policy.settle(item, 1, Outcome.FAILED, "HTTP 400")
    assert (refused.status, refused.retry_in_s, refused.error) == (
        JobStatus.FAILED,
        None,
        "HTTP 400",
    )
    retries = [policy.settle(item, n, Outcome.RETRY, "HTTP 503") for n in (1, 2, 3)]
    assert [(s.status, s.retry_in_s) for s in retries] == [
        (JobStatus.PENDING, 1),
        (JobStatus.PENDING, 2),
        (JobStatus.DEAD, None),
    ]
    assert [s.attempts for s in retries] == [1, 2, 3]


@pytest.mark.parametrize("status", list(JobStatus))
def test_transition_table_covers_every_status(status: JobStatus) -> None:
    assert status in JOB_TRANSITIONS
    assert can_transition(status, JobStatus.PENDING) == (
        status is JobStatus.PENDING or status in REPLAYABLE
    )


def test_only_failed_and_dead_items_replay() -> None:
    assert {JobStatus.FAILED, JobStatus.DEAD} == REPLAYABLE
    assert not can_transition(JobStatus.SUCCEEDED, JobStatus.PENDING)
