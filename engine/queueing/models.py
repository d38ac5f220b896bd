"""What the queues report to operators."""

from __future__ import annotations

from dataclasses import dataclass

from engine.queueing.states import QueueName


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: QueueName
    paused: bool
    waiting: int
    active: int
    delayed: int
    completed: int
    failed: int
    dead: int
    oldest_waiting_s: float | None
    completed_last_minute: int

    @property
    def throughput_per_s(self) -> float:
        """Items completed per second over the last minute."""
        return self.completed_last_minute / 60
