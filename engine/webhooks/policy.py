"""When to try a failed delivery again: exponential from 1 s (1, 2, 4, 8, 16 s by default) with
±20 % jitter, never more than the cap, then the dead-letter queue."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


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
        """Seconds to wait after `attempts` failed tries; None when the delivery is dead."""
        if attempts >= self.max_attempts:
            return None
        base = self.schedule_s[attempts - 1]
        spread = base * self.jitter
        return min(self.max_delay_s, max(0.0, base + self._random.uniform(-spread, spread)))

    def describe(self) -> dict[str, object]:
        return {
            "schedule_s": list(self.schedule_s),
            "jitter": self.jitter,
            "max_delay_s": self.max_delay_s,
            "max_retries": len(self.schedule_s),
        }
