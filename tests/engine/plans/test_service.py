"""Plans: created active, listed newest first, archived once and for good; an archived plan
refuses new subscriptions; the database refuses any change of a plan's price."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest

from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound, StateError
from engine.plans.models import NewPlan, Price
from engine.plans.service import PlanService
from engine.plans.states import BillingInterval, PlanStatus
from engine.principal import Principal

WHO = Principal(uuid4(), "req-plans")
MONTHLY = Price(1999, "USD", BillingInterval.MONTH, 1)


@pytest.fixture
def plans(database: Database) -> PlanService:
    return PlanService(database, max_amount=99_999_999)


async def test_create_list_archive(plans: PlanService) -> None:
    first = await plans.create(NewPlan(MONTHLY, "basic", 14, {"tier": "1"}), WHO)
    second = await plans.create(NewPlan(Price(500, "JPY", BillingInterval.WEEK, 2)), WHO)
    assert first.status is PlanStatus.ACTIVE
    assert first.public()["amount"] == 1999
    assert first.public()["interval"] == "month"
    page, more = await plans.page(status=None, limit=1, starting_after=None)
    assert ([p.id for p in page], more) == ([second.id], True)
    page, more = await plans.page(status=None, limit=5, starting_after=second.id)
    assert ([p.id for p in page], more) == ([first.id], False)
    archived = await plans.archive(first.id, WHO)
    assert archived.status is PlanStatus.ARCHIVED
    assert archived.archived_at is not None
    assert (await plans.archive(first.id, WHO)).archived_at == archived.archived_at
    page, _ = await plans.page(status=PlanStatus.ACTIVE, limit=5, starting_after=None)
    assert [p.id for p in page] == [second.id]


async def test_archived_plan_takes_no_subscriptions(plans: PlanService, database: Database) -> None:
    plan = await plans.create(NewPlan(MONTHLY), WHO)
    async with database.connection() as conn:
        assert (await plans.require_active(conn, plan.id)).id == plan.id
        await plans.archive(plan.id, WHO)
        with pytest.raises(StateError) as refused:
            await plans.require_active(conn, plan.id)
        assert refused.value.code == "plan_archived"
        with pytest.raises(NotFound):
            await plans.require_active(conn, uuid4())


async def test_amount_over_the_maximum(plans: PlanService) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await plans.create(NewPlan(Price(100_000_000, "USD", BillingInterval.DAY, 1)), WHO)
    assert refused.value.param == "amount"


@pytest.mark.parametrize(
    "change",
    [
        "amount = 1",
        "currency = 'EUR'",
        "interval = 'year'",
        "interval_count = 2",
        "trial_period_days = 3",
    ],
)
async def test_the_database_keeps_a_price_immutable(
    plans: PlanService, database: Database, change: str
) -> None:
    plan = await plans.create(NewPlan(MONTHLY), WHO)
    async with database.connection() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="never changes"):
            await conn.execute(f"UPDATE plans SET {change} WHERE id = $1", plan.id)


async def test_the_database_bounds_a_period_to_a_year(database: Database) -> None:
    async with database.connection() as conn:
        with pytest.raises(asyncpg.CheckViolationError, match="period_within_a_year"):
            await conn.execute(
                """INSERT INTO plans (id, amount, currency, interval, interval_count)
                   VALUES ($1, 100, 'USD', 'week', 53)""",
                uuid4(),
            )
