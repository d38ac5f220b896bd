"""The states of a queue item, with their transition table, and the names of the queues.

The enums are the data contract's (`schema/states.py`), mirrored by the CHECK constraints on
`webhook_deliveries.status` (migration 0002) and `scheduled_jobs.status` (migration 0003), and
by the `queue_state` rows of both migrations.
"""

from __future__ import annotations

from schema.states import ClearableState, JobStatus, QueueName

__all__ = [
    "CLEARED_STATUS",
    "JOB_TRANSITIONS",
    "REPLAYABLE",
    "ClearableState",
    "JobStatus",
    "QueueName",
    "can_transition",
]

# `pending → pending` is a retry: the item goes back to wait for its next attempt. Finished
# items stay finished, except failed and dead ones, which an operator may replay.
JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset(
        {JobStatus.PENDING, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD}
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset({JobStatus.PENDING}),
    JobStatus.DEAD: frozenset({JobStatus.PENDING}),
}

# Finished items that a replay puts back in the queue.
REPLAYABLE = frozenset(
    status
    for status, targets in JOB_TRANSITIONS.items()
    if status is not JobStatus.PENDING and JobStatus.PENDING in targets
)

# The item status behind each state an operator may clear.
CLEARED_STATUS: dict[ClearableState, JobStatus] = {
    ClearableState.COMPLETED: JobStatus.SUCCEEDED,
    ClearableState.FAILED: JobStatus.FAILED,
    ClearableState.DEAD: JobStatus.DEAD,
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    """Whether a queue item may go from `current` to `target`."""
    return target in JOB_TRANSITIONS[current]
