"""Subscriptions wired as a process wires them, on one in-process ledger shard (the money path's
own test rig) instead of Ray: the billing charges through `PaymentService.execute`, the saved
method opens from the real vault, and time is a `FakeClock` (real time) or a test clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from engine.cards import CardDetails, CardToken
from engine.customers.models import Consent, CustomerRecord, Profile
from engine.customers.service import CustomerService
from engine.db.database import Database
from engine.gateways.base import Gateway
from engine.keys.keyring import Keyring
from engine.payment_methods.models import NewCard
from engine.payment_methods.service import PaymentMethodService
from engine.payments.commands import Command, CommandResult, RequestContext
from engine.payments.service import PaymentService
from engine.plans.models import NewPlan, Plan, Price
from engine.plans.service import PlanService
from engine.plans.states import BillingInterval
from engine.principal import Principal
from engine.subscriptions.billing import Billing
from engine.subscriptions.charging import Executor
from engine.subscriptions.commands import NewSubscription
from engine.subscriptions.service import SubscriptionService
from engine.subscriptions.settlement import Dunning
from engine.test_clocks.clock import BillingClock
from engine.test_clocks.models import TestClock
from engine.test_clocks.service import TestClockService
from schema.api.payment_method_ids import parse_payment_method_id
from tests.engine.payments.fakes import FakeClock, FakeGateway
from tests.engine.payments.harness import engine_settings, make_service

VISA = "4242424242424242"
MONTHLY = Price(1999, "USD", BillingInterval.MONTH, 1)
CONSENT = Consent("2026-11", datetime(2026, 11, 1).astimezone())


@dataclass
class Billed:
    """The subscription engine under test, and what it runs on."""

    db: Database
    gateway: Gateway
    wall: FakeClock
    billing: Billing
    subscriptions: SubscriptionService
    methods: PaymentMethodService
    plans: PlanService
    clocks: TestClockService
    customers: CustomerService
    api_key: UUID
    # The shard's command path the billing charges through, and the shard.
    execute: Executor
    shard: PaymentService
    # How many charges reached the shard.
    executed: int = 0

    @property
    def ctx(self) -> RequestContext:
        return RequestContext(self.api_key, f"test-{uuid4().hex[:8]}")

    @property
    def who(self) -> Principal:
        return self.ctx.principal

    async def customer(self, clock: TestClock | None = None) -> UUID:
        record = CustomerRecord(
            Profile(f"c-{uuid4().hex[:8]}@example.com", "Ada", "Lovelace"),
            CONSENT,
            test_clock_id=None if clock is None else clock.id,
        )
        return (await self.customers.create(record, self.who)).id

    async def card(self, customer_id: UUID, number: str = VISA) -> UUID:
        saved = await self.methods.attach(
            NewCard(number, 12, 2034), customer_id=customer_id, ctx=self.ctx
        )
        assert saved.status_code == 200, saved.body
        return parse_payment_method_id(saved.body["id"])

    async def plan(self, price: Price = MONTHLY, trial_days: int = 0) -> Plan:
        return await self.plans.create(NewPlan(price, trial_period_days=trial_days), self.who)

    async def subscribe(
        self, customer_id: UUID, method: UUID | NewCard, **kwargs: object
    ) -> CommandResult:
        request = NewSubscription(customer_id, method, **kwargs)  # type: ignore[arg-type]
        return await self.subscriptions.create(request, self.ctx)

    def scheduler(self, execute: Executor) -> Billing:
        """Another scheduler's billing, on the same database and shards, charging through
        `execute`."""
        return Billing(
            self.db,
            execute=execute,
            open_saved=self.methods.charge_source,
            open_saved_many=self.methods.charge_sources,
            clock=BillingClock(self.wall.now),
            dunning=Dunning((1, 3, 5)),
        )

    async def on_clock(
        self, count: int, start: datetime, advance_to: datetime | None = None
    ) -> tuple[TestClock, list[UUID]]:
        """A test clock at `start` and `count` monthly subscriptions of its customers (each
        paid its first invoice), the clock then moved to `advance_to` (its due run not run)."""
        clock = await self.clocks.create(frozen_time=start, name=None, principal=self.who)
        plan = await self.plan()
        subs = []
        for _ in range(count):
            customer = await self.customer(clock)
            created = await self.subscribe(customer, await self.card(customer), plan_id=plan.id)
            assert created.status_code == 201, created.body
            subs.append(UUID(created.body["id"]))
        if advance_to is not None:
            await self.clocks.advance(clock.id, frozen_time=advance_to, principal=self.who)
        return clock, subs


async def build(
    db: Database,
    *,
    gateway: Gateway | None = None,
    wall: FakeClock | None = None,
    dunning: Dunning | None = None,
) -> Billed:
    api_key = uuid4()
    wall = wall or FakeClock()
    gateway = gateway or FakeGateway()
    shard, _ = await make_service(db, gateway, wall)
    # The shard's master key: one instance has one (the vault's fingerprint key is shared).
    keyring = Keyring.from_settings(engine_settings())
    methods = PaymentMethodService(db, keyring, idempotency_ttl_h=24)
    plans = PlanService(db, max_amount=99_999_999)
    billed: Billed

    async def execute(command: Command) -> CommandResult:
        billed.executed += 1
        [result] = await shard.execute([command])
        return result

    async def open_saved(method_id: UUID, customer_id: UUID | None) -> CardDetails | CardToken:
        return await methods.charge_source(method_id, customer_id)

    billing = Billing(
        db,
        execute=execute,
        open_saved=open_saved,
        open_saved_many=methods.charge_sources,
        clock=BillingClock(wall.now),
        dunning=dunning or Dunning((1, 3, 5)),
    )
    billed = Billed(
        db=db,
        gateway=gateway,
        wall=wall,
        billing=billing,
        subscriptions=SubscriptionService(
            db,
            billing=billing,
            methods=methods,
            plans=plans,
            max_amount=99_999_999,
            idempotency_ttl_h=24,
        ),
        methods=methods,
        plans=plans,
        clocks=TestClockService(db, sandbox_only=True),
        customers=CustomerService(db, keyring),
        api_key=api_key,
        execute=execute,
        shard=shard,
    )
    return billed
