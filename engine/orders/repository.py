"""SQL of orders (migrations 0001, 0016). Keyword-only methods; never commits.

An order's totals and status are written only by `follow_payments`, in the transaction that
moves its payments, from the payments themselves; the database checks the result at commit
(`order_totals_match_payments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from engine.db.listing import NEWEST_FIRST, ListQuery, split_page
from engine.orders.models import NewOrder, Order, PayableOrder
from engine.orders.states import OrderStatus
from engine.principal import Principal
from schema.api.orders import OrderQuery

_COLUMNS = """o.id, o.customer_id, o.amount, o.currency, o.status, o.amount_paid,
    o.amount_refunded, o.description, o.metadata, o.created_at, o.updated_at"""


def _order(row: asyncpg.Record) -> Order:
    return Order(
        id=row["id"],
        customer_id=row["customer_id"],
        amount=row["amount"],
        currency=row["currency"].strip(),
        status=OrderStatus(row["status"]),
        amount_paid=row["amount_paid"],
        amount_refunded=row["amount_refunded"],
        description=row["description"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class OrderRepository:
    async def insert(
        self, conn: asyncpg.Connection, *, order_id: UUID, order: NewOrder, principal: Principal
    ) -> Order:
        row = await conn.fetchrow(
            f"""INSERT INTO orders AS o (id, customer_id, amount, currency, description,
                                        metadata, api_key_id, correlation_id)
                VALUES ($8, $1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS}""",
            order.customer_id,
            order.amount,
            order.currency,
            order.description,
            order.metadata,
            principal.api_key_id,
            principal.correlation_id,
            order_id,
        )
        assert row is not None
        return _order(row)

    async def get(
        self, conn: asyncpg.Connection, *, order_id: UUID, lock: bool = False
    ) -> Order | None:
        suffix = " FOR UPDATE" if lock else ""
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM orders o WHERE o.id = $1{suffix}", order_id
        )
        return None if row is None else _order(row)

    async def exists(self, conn: asyncpg.Connection, *, order_id: UUID) -> bool:
        return bool(
            await conn.fetchval("SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)", order_id)
        )

    async def page(
        self, conn: asyncpg.Connection, *, query: OrderQuery
    ) -> tuple[list[Order], bool]:
        """One page of orders, newest first, and whether more follow."""
        sql = ListQuery("orders", "o")
        sql.where("o.customer_id = {}", query.customer_id)
        sql.where("o.status = {}", query.status)
        sql.where("o.created_at >= {}", query.created_gte)
        sql.where("o.created_at < {}", query.created_lt)
        sql.after(NEWEST_FIRST, query.starting_after)
        rows = await conn.fetch(sql.page_sql(_COLUMNS, NEWEST_FIRST, query.limit), *sql.args)
        found, more = split_page(rows, query.limit)
        return [_order(r) for r in found], more

    async def payable(
        self, conn: asyncpg.Connection, *, order_ids: Sequence[UUID]
    ) -> dict[UUID, PayableOrder]:
        """The orders new payments name, locked (in id order) until the caller's transaction
        ends, so payments of concurrent batches and a cancel take turns on each order; with
        what their payments hold: the amount of those authorized or in flight, the captured
        amount of the others."""
        rows = await conn.fetch(
            """SELECT o.id, o.customer_id, o.currency, o.status, o.amount,
                      (SELECT coalesce(sum(CASE WHEN t.status IN ('processing', 'authorized')
                                                THEN t.amount ELSE t.amount_captured END), 0)
                       FROM transactions t
                       WHERE t.order_id = o.id AND t.parent_id IS NULL)::bigint AS committed
               FROM orders o WHERE o.id = ANY($1::uuid[])
               ORDER BY o.id FOR UPDATE OF o""",
            list(order_ids),
        )
        return {
            r["id"]: PayableOrder(
                r["id"],
                r["customer_id"],
                r["currency"].strip(),
                OrderStatus(r["status"]),
                r["amount"],
                r["committed"],
            )
            for r in rows
        }

    async def live_payments(self, conn: asyncpg.Connection, *, order_id: UUID) -> int:
        """How many of the order's payments are in flight or hold an authorization."""
        return int(
            await conn.fetchval(
                """SELECT count(*) FROM transactions
                   WHERE order_id = $1 AND parent_id IS NULL
                     AND status IN ('processing', 'authorized')""",
                order_id,
            )
        )

    async def cancel(
        self, conn: asyncpg.Connection, *, order_id: UUID, principal: Principal
    ) -> Order | None:
        """Cancel the order if it is pending with nothing paid; None otherwise."""
        row = await conn.fetchrow(
            f"""UPDATE orders o SET status = 'cancelled', api_key_id = $2, correlation_id = $3,
                       updated_at = now()
                WHERE o.id = $1 AND o.status = 'pending' AND o.amount_paid = 0
                RETURNING {_COLUMNS}""",
            order_id,
            principal.api_key_id,
            principal.correlation_id,
        )
        return None if row is None else _order(row)

    async def follow_payments(
        self, conn: asyncpg.Connection, *, moved: dict[UUID, Principal]
    ) -> list[Order]:
        """Bring the orders whose payments moved (by order id, with who moved them) up to
        date: totals summed from their payments and the status those give, one statement
        however many; an order whose totals did not change is left alone (and unaudited).
        Returns the orders whose status changed, as they are now."""
        if not moved:
            return []
        # `prior` is read from the statement's snapshot: the status each order had before.
        rows = await conn.fetch(
            f"""UPDATE orders o
               SET amount_paid = t.paid, amount_refunded = t.refunded,
                   status = order_status_for(o.amount, t.paid, t.refunded),
                   api_key_id = m.api_key_id, correlation_id = m.correlation_id,
                   updated_at = now()
               FROM unnest($1::uuid[], $2::uuid[], $3::text[])
                        AS m(id, api_key_id, correlation_id),
                    LATERAL (SELECT coalesce(sum(p.amount_captured), 0)::bigint AS paid,
                                    coalesce(sum(p.amount_refunded), 0)::bigint AS refunded
                             FROM transactions p
                             WHERE p.order_id = m.id AND p.parent_id IS NULL) t,
                    orders prior
               WHERE o.id = m.id AND prior.id = m.id
                 AND (o.amount_paid <> t.paid OR o.amount_refunded <> t.refunded)
               RETURNING prior.status AS prior_status, {_COLUMNS}""",
            list(moved),
            [p.api_key_id for p in moved.values()],
            [p.correlation_id for p in moved.values()],
        )
        return [_order(r) for r in rows if r["prior_status"] != r["status"]]
