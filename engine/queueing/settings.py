"""Each queue's knobs, read from the one `Settings`: how often its workers poll, how long a lease
lasts, how much one worker runs at once, and its retry policy. Each queue reads only its own
settings."""

from __future__ import annotations

from dataclasses import dataclass

from engine.config import Settings
from engine.queueing.policy import RetryPolicy

# Jobs one scheduler runs at once: housekeeping is heavy and rare, so a few suffice.
SCHEDULER_MAX_IN_FLIGHT = 20
# A lease outlives the slowest delivery (the receiver's timeout) with room to settle it.
_WEBHOOK_LEASE_MARGIN_S = 5.0


@dataclass(frozen=True, slots=True)
class QueueSettings:
    poll_s: float
    lease_s: float
    max_in_flight: int
    policy: RetryPolicy
    # Items of one group a worker runs at once (grouped queues only).
    per_group: int | None = None


def webhook_queue_settings(settings: Settings) -> QueueSettings:
    return QueueSettings(
        poll_s=settings.webhook_poll_s,
        lease_s=settings.webhook_timeout_s * 2 + _WEBHOOK_LEASE_MARGIN_S,
        max_in_flight=settings.webhook_max_in_flight,
        policy=RetryPolicy(
            schedule_s=settings.webhook_retry_schedule_s,
            jitter=settings.webhook_jitter,
            max_delay_s=settings.webhook_max_delay_s,
        ),
        per_group=settings.webhook_endpoint_concurrency,
    )


def scheduler_queue_settings(settings: Settings) -> QueueSettings:
    """Jobs retry on the default schedule (1, 2, 4, 8, 16 s, ±20 %, then dead)."""
    return QueueSettings(
        poll_s=settings.scheduler_poll_s,
        lease_s=settings.scheduler_lease_s,
        max_in_flight=SCHEDULER_MAX_IN_FLIGHT,
        policy=RetryPolicy(),
    )
