"""What one lease queue is made of: its table, its due column, its wake-up channel and, for a
queue that shares its room fairly, the groups its items belong to.

Every name here is a module constant that `QueueRepository` interpolates into SQL; none ever
comes from input. The table has the lease columns of migrations 0002 and 0003: `id uuid`,
`status` (a `JobStatus`), `attempts`, `claimed_until`, `last_error`, `created_at`,
`completed_at`, and the due column.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.queueing.states import QueueName


@dataclass(frozen=True, slots=True)
class Groups:
    """Items belong to a row of `table` (an `id` and a `status` column) through their `column`.
    Only items of groups whose status is `eligible` are claimed, and a worker takes at most its
    per-group room of each, so one slow group never fills the worker."""

    table: str
    column: str
    eligible: str


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: QueueName
    table: str
    # When an item is due: set by its producer, and by each retry to now + the policy's delay.
    due: str
    # NOTIFY channel that wakes the queue's workers when work is added or replayed.
    channel: str
    groups: Groups | None = None
