"""Create, list, read and archive plans. A plan's price never changes (the database refuses
it too); an archived plan takes no new subscriptions."""

from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg

from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound, StateError
from engine.plans.models import NewPlan, Plan, Price
from engine.plans.repository import PlanRepository
from engine.plans.states import PlanStatus
from engine.principal import Principal


def check_price(price: Price, *, max_amount: int) -> None:
    """Refuse an amount beyond `max_amount` (the API models check everything else)."""
    if price.amount > max_amount:
        raise InvalidRequest(f"amount may be at most {max_amount}", param="amount")


class PlanService:
    def __init__(self, db: Database, *, max_amount: int) -> None:
        self._db = db
        self._max_amount = max_amount
        self._repository = PlanRepository()

    async def create(self, plan: NewPlan, principal: Principal) -> Plan:
        """A new, active plan."""
        check_price(plan.price, max_amount=self._max_amount)
        async with self._db.transaction() as conn:
            return await self._repository.insert(
                conn, plan_id=uuid4(), plan=plan, principal=principal
            )

    async def get(self, plan_id: UUID) -> Plan:
        """The plan, active or archived, or NotFound."""
        async with self._db.connection() as conn:
            return await self.require(conn, plan_id)

    async def page(
        self, *, status: PlanStatus | None, limit: int, starting_after: UUID | None
    ) -> tuple[list[Plan], bool]:
        """Plans, newest first, and whether more follow."""
        async with self._db.connection() as conn:
            return await self._repository.page(
                conn, status=status, limit=limit, starting_after=starting_after
            )

    async def archive(self, plan_id: UUID, principal: Principal) -> Plan:
        """Archive the plan; archiving it again changes nothing."""
        async with self._db.transaction() as conn:
            archived = await self._repository.archive(conn, plan_id=plan_id, principal=principal)
            return archived or await self.require(conn, plan_id)

    async def require(self, conn: asyncpg.Connection, plan_id: UUID) -> Plan:
        found = await self._repository.get(conn, plan_id=plan_id)
        if found is None:
            raise NotFound(f"no plan {plan_id}", param="plan_id")
        return found

    async def require_active(self, conn: asyncpg.Connection, plan_id: UUID) -> Plan:
        """The plan, refused (422 `plan_archived`) once archived."""
        plan = await self.require(conn, plan_id)
        if plan.status is PlanStatus.ARCHIVED:
            raise StateError(
                "the plan is archived and takes no new subscriptions",
                code="plan_archived",
                param="plan_id",
            )
        return plan
