"""SQL of `subscriptions` (migration 0009). Never commits.

Status changes go through `change`, which moves a subscription only from a state the
transition table allows (`states.allowed_from`), so two writers racing over one subscription
cannot make an illegal move: the loser's update matches no row. The invoices' SQL is in
`engine/subscriptions/invoices/repository.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from engine.plans.repository import price_of_row
from engine.principal import Principal
from engine.subscriptions.models import Subscription
from engine.subscriptions.states import SubscriptionStatus, allowed_from

_SUB_COLUMNS = """id, customer_id, plan_id, amount, currency, interval, interval_count, quantity,
    status, payment_method_id, billing_anchor, period_index, current_period_start,
    current_period_end, trial_end, trial_will_end_sent, cancel_at_period_end, cancelled_at,
    paused_at, resume_at, next_run_at, test_clock_id, metadata, owner_api_key_id, created_at,
    pending_plan_id, pending_amount, pending_quantity"""
# The same, of `subscriptions s` in a join.
_SUB_COLUMNS_OF_S = ", ".join(f"s.{c.strip()}" for c in _SUB_COLUMNS.split(","))

# What `change` may set: everything but identity, price history and ownership.
_CHANGEABLE = frozenset(
    {
        "plan_id",
        "amount",
        "currency",
        "interval",
        "interval_count",
        "quantity",
        "payment_method_id",
        "billing_anchor",
        "period_index",
        "current_period_start",
        "current_period_end",
        "trial_end",
        "trial_will_end_sent",
        "cancel_at_period_end",
        "cancelled_at",
        "paused_at",
        "resume_at",
        "next_run_at",
        "metadata",
        "pending_plan_id",
        "pending_amount",
        "pending_quantity",
    }
)


def _subscription(row: asyncpg.Record) -> Subscription:
    return Subscription(
        id=row["id"],
        customer_id=row["customer_id"],
        plan_id=row["plan_id"],
        price=price_of_row(row),
        quantity=row["quantity"],
        status=SubscriptionStatus(row["status"]),
        payment_method_id=row["payment_method_id"],
        billing_anchor=row["billing_anchor"],
        period_index=row["period_index"],
        current_period_start=row["current_period_start"],
        current_period_end=row["current_period_end"],
        trial_end=row["trial_end"],
        trial_will_end_sent=row["trial_will_end_sent"],
        cancel_at_period_end=row["cancel_at_period_end"],
        cancelled_at=row["cancelled_at"],
        paused_at=row["paused_at"],
        resume_at=row["resume_at"],
        next_run_at=row["next_run_at"],
        test_clock_id=row["test_clock_id"],
        metadata=row["metadata"],
        owner_api_key_id=row["owner_api_key_id"],
        created_at=row["created_at"],
        pending_plan_id=row["pending_plan_id"],
        pending_amount=row["pending_amount"],
        pending_quantity=row["pending_quantity"],
    )


class SubscriptionRepository:
    async def insert(
        self, conn: asyncpg.Connection, *, sub: Subscription, principal: Principal
    ) -> Subscription:
        p = sub.price
        row = await conn.fetchrow(
            f"""INSERT INTO subscriptions (id, customer_id, plan_id, amount, currency, interval,
                    interval_count, quantity, status, payment_method_id, billing_anchor,
                    period_index, current_period_start, current_period_end, trial_end,
                    next_run_at, test_clock_id, metadata, owner_api_key_id, api_key_id,
                    correlation_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                        $17, $18, $19, $20, $21)
                RETURNING {_SUB_COLUMNS}""",
            sub.id,
            sub.customer_id,
            sub.plan_id,
            p.amount,
            p.currency,
            p.interval,
            p.interval_count,
            sub.quantity,
            sub.status,
            sub.payment_method_id,
            sub.billing_anchor,
            sub.period_index,
            sub.current_period_start,
            sub.current_period_end,
            sub.trial_end,
            sub.next_run_at,
            sub.test_clock_id,
            sub.metadata,
            sub.owner_api_key_id,
            principal.api_key_id,
            principal.correlation_id,
        )
        return _subscription(row)

    async def get(
        self, conn: asyncpg.Connection, *, subscription_id: UUID, for_update: bool = False
    ) -> Subscription | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn.fetchrow(
            f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE id = $1{lock}", subscription_id
        )
        return None if row is None else _subscription(row)

    async def page(
        self,
        conn: asyncpg.Connection,
        *,
        customer_id: UUID | None,
        status: SubscriptionStatus | None,
        limit: int,
        starting_after: UUID | None,
    ) -> tuple[list[Subscription], bool]:
        """Subscriptions, newest first, and whether more follow."""
        rows = await conn.fetch(
            f"""SELECT {_SUB_COLUMNS} FROM subscriptions
                WHERE ($1::uuid IS NULL OR customer_id = $1)
                  AND ($2::text IS NULL OR status = $2)
                  AND ($4::uuid IS NULL OR (created_at, id) < (
                        SELECT created_at, id FROM subscriptions WHERE id = $4))
                ORDER BY created_at DESC, id DESC LIMIT $3""",
            customer_id,
            status,
            limit + 1,
            starting_after,
        )
        return [_subscription(r) for r in rows[:limit]], len(rows) > limit

    async def change(
        self,
        conn: asyncpg.Connection,
        *,
        subscription_id: UUID,
        principal: Principal,
        status: SubscriptionStatus | None = None,
        **changes: Any,
    ) -> Subscription | None:
        """Apply `changes` (and move to `status`, only from a state allowed to move there);
        None when the subscription is in no such state."""
        unknown = set(changes) - _CHANGEABLE
        if unknown:
            raise ValueError(f"not changeable: {sorted(unknown)}")
        values: list[Any] = [subscription_id, principal.api_key_id, principal.correlation_id]
        sets = ["updated_at = now()", "api_key_id = $2", "correlation_id = $3"]
        for name in sorted(changes):
            values.append(changes[name])
            sets.append(f"{name} = ${len(values)}")
        guard = ""
        if status is not None:
            values.append(status)
            sets.append(f"status = ${len(values)}")
            values.append([s.value for s in allowed_from(status)])
            guard = f"AND status = ANY(${len(values)}::text[])"
        row = await conn.fetchrow(
            f"""UPDATE subscriptions SET {", ".join(sets)}
                WHERE id = $1 {guard} RETURNING {_SUB_COLUMNS}""",
            *values,
        )
        return None if row is None else _subscription(row)

    async def due(
        self, conn: asyncpg.Connection, *, clock_id: UUID | None, now: datetime, limit: int
    ) -> list[UUID]:
        """Subscriptions with work due by `now`, earliest first: those on the test clock
        `clock_id`, or (None) those on real time."""
        rows = await conn.fetch(
            """SELECT id FROM subscriptions
               WHERE test_clock_id IS NOT DISTINCT FROM $1 AND next_run_at <= $2
               ORDER BY next_run_at, id LIMIT $3""",
            clock_id,
            now,
            limit,
        )
        return [r["id"] for r in rows]

    async def lock_with_time(
        self, conn: asyncpg.Connection, *, subscription_ids: Sequence[UUID], wall_now: datetime
    ) -> list[tuple[Subscription, datetime]]:
        """Lock the subscriptions (in id order, as every bulk writer does, so two never
        deadlock) and read each with the time its customer lives at: its test clock's, or
        `wall_now`."""
        rows = await conn.fetch(
            f"""SELECT {_SUB_COLUMNS_OF_S}, coalesce(tc.frozen_time, $2) AS customer_now
                FROM subscriptions s JOIN customers c ON c.id = s.customer_id
                LEFT JOIN test_clocks tc ON tc.id = c.test_clock_id
                WHERE s.id = ANY($1::uuid[]) ORDER BY s.id FOR UPDATE OF s""",
            list(subscription_ids),
            wall_now,
        )
        return [(_subscription(r), r["customer_now"]) for r in rows]

    async def renew_many(
        self,
        conn: asyncpg.Connection,
        *,
        renewals: Sequence[tuple[Subscription, int, datetime]],
        principal: Principal,
    ) -> list[Subscription]:
        """Start period `index` of each subscription, due at once (`next_run_at` its
        customer's now), in one statement; the status does not move."""
        starts, ends = [], []
        for sub, index, _ in renewals:
            start, end = sub.period(index)
            starts.append(start)
            ends.append(end)
        rows = await conn.fetch(
            f"""UPDATE subscriptions s SET period_index = u.period_index,
                    current_period_start = u.period_start, current_period_end = u.period_end,
                    next_run_at = u.due, updated_at = now(), api_key_id = $6,
                    correlation_id = $7
                FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::timestamptz[],
                            $5::timestamptz[]) AS u(id, period_index, period_start, period_end, due)
                WHERE s.id = u.id RETURNING {_SUB_COLUMNS_OF_S}""",
            [sub.id for sub, _, _ in renewals],
            [index for _, index, _ in renewals],
            starts,
            ends,
            [due for _, _, due in renewals],
            principal.api_key_id,
            principal.correlation_id,
        )
        return [_subscription(r) for r in rows]

    async def set_next_runs(
        self,
        conn: asyncpg.Connection,
        *,
        next_runs: Mapping[UUID, datetime | None],
        principal: Principal,
    ) -> list[Subscription]:
        """Set each subscription's `next_run_at`, in one statement."""
        rows = await conn.fetch(
            f"""UPDATE subscriptions s SET next_run_at = u.next_run_at, updated_at = now(),
                    api_key_id = $3, correlation_id = $4
                FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, next_run_at)
                WHERE s.id = u.id RETURNING {_SUB_COLUMNS_OF_S}""",
            list(next_runs),
            list(next_runs.values()),
            principal.api_key_id,
            principal.correlation_id,
        )
        return [_subscription(r) for r in rows]
