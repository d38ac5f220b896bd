"""Builds the subscription engine for a process: the billing (charging through whatever
executor the process has: the replica's shard router, or the scheduler's shard calls), the
API's service, the test clocks, and the scheduler's job handlers that run them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from engine.config import Settings
from engine.db.database import Database
from engine.gateways.registry import builtin_registry
from engine.payment_methods.service import PaymentMethodService
from engine.plans.service import PlanService
from engine.scheduler.handlers import Handler
from engine.subscriptions.billing import Billing
from engine.subscriptions.charging import Executor
from engine.subscriptions.schedule import RUN_JOB, SWEEP_JOB
from engine.subscriptions.service import SubscriptionService
from engine.subscriptions.settlement import Dunning
from engine.test_clocks.clock import BillingClock, WallClock, utc_now
from engine.test_clocks.service import ADVANCE_JOB, TestClockService


@dataclass(frozen=True)
class SubscriptionRuntime:
    billing: Billing
    service: SubscriptionService
    clocks: TestClockService

    def handlers(self) -> dict[str, Handler]:
        """The scheduler's jobs of subscriptions: a subscription's due run, and a test
        clock's advance (which runs its customers' subscriptions)."""

        async def run(db: Database, payload: dict[str, Any]) -> None:
            await self.billing.run(UUID(payload["subscription_id"]))

        async def advance(db: Database, payload: dict[str, Any]) -> None:
            await self.clocks.run_advance(UUID(payload["test_clock_id"]), self.billing.run_due)

        async def sweep(db: Database, payload: dict[str, Any]) -> None:
            await self.billing.run_overdue()

        return {RUN_JOB: run, ADVANCE_JOB: advance, SWEEP_JOB: sweep}

    @staticmethod
    def recurring(sweep_every_s: float) -> dict[str, tuple[dict[str, Any], float]]:
        """The sweep that runs overdue subscriptions, every `sweep_every_s`."""
        return {SWEEP_JOB: ({}, sweep_every_s)}


def open_subscriptions(
    settings: Settings,
    db: Database,
    *,
    execute: Executor,
    methods: PaymentMethodService,
    plans: PlanService,
    wall_clock: WallClock = utc_now,
) -> SubscriptionRuntime:
    """The subscription engine on `db`, charging through `execute`."""
    billing = Billing(
        db,
        execute=execute,
        open_saved=methods.charge_source,
        open_saved_many=methods.charge_sources,
        clock=BillingClock(wall_clock),
        dunning=Dunning(
            settings.subscription_retry_schedule_days, settings.subscription_cancel_after_retries
        ),
        trial_notice_days=settings.subscription_trial_notice_days,
        due_concurrency=settings.subscription_due_concurrency,
    )
    service = SubscriptionService(
        db,
        billing=billing,
        methods=methods,
        plans=plans,
        max_amount=settings.max_amount,
        idempotency_ttl_h=settings.idempotency_ttl_h,
    )
    clocks = TestClockService(
        db,
        sandbox_only=builtin_registry().sandboxes_only(settings.gateways),
        wall_clock=wall_clock,
    )
    return SubscriptionRuntime(billing, service, clocks)
