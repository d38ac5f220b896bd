"""SQL of the financial retention purge: erased customers whose whole remaining history is
older than a cutoff, and the deletion of that history. Never commits.

A customer's history is every row naming it, directly or through its rows: orders, payments and
their operations (transactions, refunds, gateway attempts), ledger entries, saved payment
methods, subscriptions, invoices, AML alerts, and the events about any of them with their
webhook deliveries. A row counts by its latest timestamp (created, updated, detached, paid,
resolved, completed). An open AML alert keeps the customer whatever its age.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

# Every id the customer `c.id` owns, events being about these objects.
_OWNED = """
    SELECT c.id
    UNION ALL SELECT id FROM orders WHERE customer_id = c.id
    UNION ALL SELECT id FROM transactions WHERE customer_id = c.id
    UNION ALL SELECT id FROM payment_methods WHERE customer_id = c.id
    UNION ALL SELECT id FROM subscriptions WHERE customer_id = c.id
    UNION ALL SELECT id FROM invoices WHERE customer_id = c.id
    UNION ALL SELECT id FROM compliance_alerts WHERE customer_id = c.id
"""

# True when the erased customer `c` has a row at or after the cutoff `$1`. `greatest` skips
# NULLs, so a column never set does not count.
_KEPT = f"""(
    EXISTS (SELECT 1 FROM orders WHERE customer_id = c.id
            AND greatest(created_at, updated_at) >= $1)
    OR EXISTS (SELECT 1 FROM transactions WHERE customer_id = c.id
               AND greatest(created_at, updated_at) >= $1)
    OR EXISTS (SELECT 1 FROM refunds r JOIN transactions t ON t.id = r.transaction_id
               WHERE t.customer_id = c.id AND greatest(r.created_at, r.updated_at) >= $1)
    OR EXISTS (SELECT 1 FROM gateway_attempts g JOIN transactions t ON t.id = g.payment_id
               WHERE t.customer_id = c.id AND g.created_at >= $1)
    OR EXISTS (SELECT 1 FROM ledger_entries WHERE customer_id = c.id AND created_at >= $1)
    OR EXISTS (SELECT 1 FROM payment_methods WHERE customer_id = c.id
               AND greatest(created_at, updated_at, detached_at) >= $1)
    OR EXISTS (SELECT 1 FROM subscriptions WHERE customer_id = c.id
               AND (status NOT IN ('cancelled', 'failed')
                    OR greatest(created_at, updated_at, cancelled_at) >= $1))
    OR EXISTS (SELECT 1 FROM invoices WHERE customer_id = c.id
               AND greatest(created_at, updated_at, paid_at) >= $1)
    OR EXISTS (SELECT 1 FROM compliance_alerts WHERE customer_id = c.id
               AND (status = 'open' OR greatest(created_at, resolved_at) >= $1))
    OR EXISTS (SELECT 1 FROM events e WHERE e.object_id IN ({_OWNED})
               AND (e.created_at >= $1
                    OR EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id
                               AND greatest(d.created_at, d.completed_at) >= $1)))
)"""


class RetentionRepository:
    async def expired(
        self, conn: asyncpg.Connection, *, cutoff: datetime, after: UUID | None, limit: int
    ) -> list[UUID]:
        """Up to `limit` erased customers (by id, after `after`) with no row at or after
        `cutoff`."""
        rows = await conn.fetch(
            f"""SELECT c.id FROM customers c
                WHERE c.erased_at IS NOT NULL AND ($2::uuid IS NULL OR c.id > $2)
                  AND NOT {_KEPT}
                ORDER BY c.id LIMIT $3""",
            cutoff,
            after,
            limit,
        )
        return [r["id"] for r in rows]

    async def lock_expired(
        self, conn: asyncpg.Connection, *, customer_id: UUID, cutoff: datetime
    ) -> bool:
        """Lock the customer's row if it is erased with no row at or after `cutoff` (checked
        again under the lock: a payment may have come in since it was listed)."""
        locked = await conn.fetchval(
            "SELECT true FROM customers WHERE id = $1 AND erased_at IS NOT NULL FOR UPDATE",
            customer_id,
        )
        if not locked:
            return False
        kept = await conn.fetchval(
            f"SELECT {_KEPT} FROM customers c WHERE c.id = $2", cutoff, customer_id
        )
        return not kept

    async def delete_customer(
        self, conn: asyncpg.Connection, *, customer_id: UUID
    ) -> dict[str, int]:
        """Delete the customer and every row of its history, referencing rows first (the
        foreign keys restrict); how many rows went, by table (events count their deliveries,
        which cascade)."""
        deleted: dict[str, int] = {}

        async def run(table: str, sql: str) -> None:
            result: str = await conn.execute(sql, customer_id)
            deleted[table] = deleted.get(table, 0) + int(result.split()[-1])

        await run(
            "events",
            f"""DELETE FROM events e
                WHERE e.object_id IN (SELECT o.id FROM (SELECT $1::uuid AS id) c,
                                      LATERAL ({_OWNED}) o)""",
        )
        await run(
            "gateway_attempts",
            """DELETE FROM gateway_attempts
               WHERE payment_id IN (SELECT id FROM transactions WHERE customer_id = $1)""",
        )
        await run("ledger_entries", "DELETE FROM ledger_entries WHERE customer_id = $1")
        await run(
            "refunds",
            """DELETE FROM refunds
               WHERE transaction_id IN (SELECT id FROM transactions WHERE customer_id = $1)""",
        )
        await run("compliance_alerts", "DELETE FROM compliance_alerts WHERE customer_id = $1")
        await run("invoices", "DELETE FROM invoices WHERE customer_id = $1")
        await run("subscriptions", "DELETE FROM subscriptions WHERE customer_id = $1")
        # Operations (captures, refunds, voids) name their payment: they go before it.
        await run(
            "transactions",
            "DELETE FROM transactions WHERE customer_id = $1 AND parent_id IS NOT NULL",
        )
        await run("transactions", "DELETE FROM transactions WHERE customer_id = $1")
        await run("orders", "DELETE FROM orders WHERE customer_id = $1")
        await run("payment_methods", "DELETE FROM payment_methods WHERE customer_id = $1")
        # Crypto-shredding destroyed them already; one written since would be an orphan.
        await run("data_keys", "DELETE FROM data_keys WHERE customer_id = $1")
        await run("customers", "DELETE FROM customers WHERE id = $1")
        return deleted
