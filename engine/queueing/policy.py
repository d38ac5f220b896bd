"""How a finished attempt settles its item: done, failed for good, or back in the queue after a
delay that grows exponentially (1, 2, 4, 8, 16 s by default) with ±20 % jitter, never past the
cap, and dead once the retries are spent.

Jitter spreads retries of items that failed together (an endpoint that was down), so they do
not all come back in the same instant.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from engine.queueing.states import JobStatus, can_transition


class Outcome(StrEnum):
    """What one attempt at an item came to."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"  # trouble that may pass: try again after the policy's delay
    FAILED = "failed"  # refused for good: retrying cannot help


@dataclass(frozen=True, slots=True)
class Settlement:
    """How to close an attempt: the item's new status, with the delay before its next attempt
    when it goes back to `pending`."""

    item_id: UUID
    # The attempts count of the lease being settled: a settlement applies only while no other
    # worker has claimed the item since (its lease ran out).
    attempts: int
    status: JobStatus
    retry_in_s: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    schedule_s: tuple[float, ...] = (1, 2, 4, 8, 16)
    jitter: float = 0.2
    max_delay_s: float = 300.0
    _random: random.Random = field(default_factory=random.Random, compare=False)

    @property
    def max_attempts(self) -> int:
        """The first try plus one retry per step of the schedule."""
        return 1 + len(self.schedule_s)

    def delay_after(self, attempts: int) -> float | None:
        """Seconds to wait after `attempts` failed tries; None when the item is dead."""
        if attempts >= self.max_attempts:
            return None
        base = self.schedule_s[attempts - 1]
        spread = base * self.jitter
        return min(self.max_delay_s, max(0.0, base + self._random.uniform(-spread, spread)))

    def settle(
        self, item_id: UUID, attempts: int, outcome: Outcome, error: str | None
    ) -> Settlement:
        """The settlement of the `attempts`-th attempt at an item, which came to `outcome`."""
        delay: float | None = None
        if outcome is Outcome.SUCCEEDED:
            status, error = JobStatus.SUCCEEDED, None
        elif outcome is Outcome.FAILED:
            status = JobStatus.FAILED
        else:
            delay = self.delay_after(attempts)
            status = JobStatus.PENDING if delay is not None else JobStatus.DEAD
        assert can_transition(JobStatus.PENDING, status)
        return Settlement(item_id, attempts, status, delay, error)

    def describe(self) -> dict[str, object]:
        return {
            "schedule_s": list(self.schedule_s),
            "jitter": self.jitter,
            "max_delay_s": self.max_delay_s,
            "max_retries": len(self.schedule_s),
        }
