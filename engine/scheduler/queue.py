"""The `scheduler` lease queue: durable jobs run at `run_at`. A statement trigger of migration
0003 notifies `paygrid_scheduled_jobs` whenever jobs are added or change status or time."""

from __future__ import annotations

from engine.queueing.spec import QueueSpec
from engine.queueing.states import QueueName

JOBS = QueueSpec(
    name=QueueName.SCHEDULER,
    table="scheduled_jobs",
    due="run_at",
    channel="paygrid_scheduled_jobs",
)
