"""SQL of `plans` (migration 0008). Never commits."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from engine.plans.models import NewPlan, Plan, Price
from engine.plans.states import BillingInterval, PlanStatus
from engine.principal import Principal

_COLUMNS = """id, name, amount, currency, interval, interval_count, trial_period_days, status,
    metadata, created_at, archived_at"""


def price_of_row(row: asyncpg.Record) -> Price:
    """The price held in a row's `amount`, `currency`, `interval` and `interval_count` columns
    (plans and subscriptions store a price the same way)."""
    return Price(
        row["amount"],
        row["currency"].strip(),
        BillingInterval(row["interval"]),
        row["interval_count"],
    )


def _plan(row: asyncpg.Record) -> Plan:
    return Plan(
        id=row["id"],
        name=row["name"],
        price=price_of_row(row),
        trial_period_days=row["trial_period_days"],
        status=PlanStatus(row["status"]),
        metadata=row["metadata"],
        created_at=row["created_at"],
        archived_at=row["archived_at"],
    )


class PlanRepository:
    async def insert(
        self, conn: asyncpg.Connection, *, plan_id: UUID, plan: NewPlan, principal: Principal
    ) -> Plan:
        p = plan.price
        row = await conn.fetchrow(
            f"""INSERT INTO plans (id, name, amount, currency, interval, interval_count,
                    trial_period_days, metadata, api_key_id, correlation_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_COLUMNS}""",
            plan_id,
            plan.name,
            p.amount,
            p.currency,
            p.interval,
            p.interval_count,
            plan.trial_period_days,
            plan.metadata,
            principal.api_key_id,
            principal.correlation_id,
        )
        return _plan(row)

    async def get(self, conn: asyncpg.Connection, *, plan_id: UUID) -> Plan | None:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM plans WHERE id = $1", plan_id)
        return None if row is None else _plan(row)

    async def page(
        self,
        conn: asyncpg.Connection,
        *,
        status: PlanStatus | None,
        limit: int,
        starting_after: UUID | None,
    ) -> tuple[list[Plan], bool]:
        """Plans, newest first, and whether more follow."""
        rows = await conn.fetch(
            f"""SELECT {_COLUMNS} FROM plans
                WHERE ($1::text IS NULL OR status = $1)
                  AND ($3::uuid IS NULL OR (created_at, id) < (
                        SELECT created_at, id FROM plans WHERE id = $3))
                ORDER BY created_at DESC, id DESC LIMIT $2""",
            status,
            limit + 1,
            starting_after,
        )
        return [_plan(r) for r in rows[:limit]], len(rows) > limit

    async def archive(
        self, conn: asyncpg.Connection, *, plan_id: UUID, principal: Principal
    ) -> Plan | None:
        """Archive an active plan; None if there is no such active plan."""
        row = await conn.fetchrow(
            f"""UPDATE plans SET status = 'archived', archived_at = now(), updated_at = now(),
                    api_key_id = $2, correlation_id = $3
                WHERE id = $1 AND status = 'active' RETURNING {_COLUMNS}""",
            plan_id,
            principal.api_key_id,
            principal.correlation_id,
        )
        return None if row is None else _plan(row)
