"""When billing next looks at a subscription, on its customer's clock, and the job that runs
it then.

What is due is decided by `next_run_at` on the subscription. For a customer on real time a
`subscription.run` job is queued at that time (one per time: its dedupe key holds it); for one
on a test clock, advancing the clock runs what is due for its customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from engine.scheduler.repository import JobRepository
from engine.subscriptions.models import Subscription
from engine.subscriptions.states import SubscriptionStatus
from engine.test_clocks.clock import BillingClock

RUN_JOB = "subscription.run"
SWEEP_JOB = "subscriptions.sweep"

S = SubscriptionStatus


class Schedule:
    def __init__(self, clock: BillingClock, *, trial_notice_days: int = 3) -> None:
        self._clock = clock
        self._trial_notice = timedelta(days=trial_notice_days)
        self._jobs = JobRepository()

    @property
    def trial_notice(self) -> timedelta:
        """How long before a trial ends `subscription.trial_will_end` is sent."""
        return self._trial_notice

    def now(self) -> datetime:
        """Real time (the time of customers on no test clock)."""
        return self._clock.now()

    async def now_for(self, conn: asyncpg.Connection, customer_id: UUID) -> datetime:
        """The time the customer lives at (its test clock's, or real time)."""
        return await self._clock.customer_now(conn, customer_id=customer_id)

    def next_run(self, sub: Subscription, status: SubscriptionStatus) -> datetime | None:
        """When billing must next look at a subscription in `status` with nothing pending."""
        if status in (S.CANCELLED, S.FAILED):
            return None
        if status is S.PAUSED:
            if sub.cancel_at_period_end:
                # Cancelled when its period ends, unless resumed before then.
                ends = sub.current_period_end
                return ends if sub.resume_at is None else min(sub.resume_at, ends)
            return sub.resume_at
        if status is S.TRIALING and sub.trial_end is not None:
            notice = sub.trial_end - self._trial_notice
            return sub.trial_end if sub.trial_will_end_sent else min(notice, sub.trial_end)
        return sub.current_period_end

    async def queue(self, conn: asyncpg.Connection, sub: Subscription) -> None:
        """Queue the job that runs the subscription at `next_run_at`, for a customer on real
        time (a test clock's advance runs the others). One job per time: the dedupe key
        holds it."""
        if sub.next_run_at is None or sub.test_clock_id is not None:
            return
        await self._jobs.enqueue(
            conn,
            kind=RUN_JOB,
            payload={"subscription_id": str(sub.id)},
            run_at=sub.next_run_at,
            dedupe_key=f"{RUN_JOB}:{sub.id}:{sub.next_run_at.isoformat()}",
        )

    async def queue_many(self, conn: asyncpg.Connection, subs: Sequence[Subscription]) -> None:
        """`queue` for many subscriptions, in one statement."""
        jobs = [
            (
                {"subscription_id": str(sub.id)},
                sub.next_run_at,
                f"{RUN_JOB}:{sub.id}:{sub.next_run_at.isoformat()}",
            )
            for sub in subs
            if sub.next_run_at is not None and sub.test_clock_id is None
        ]
        await self._jobs.enqueue_many(conn, kind=RUN_JOB, jobs=jobs)
