"""SQL of the database operations: a round trip, the server's version, table sizes and row
counts, and transaction totals from the `transaction_summary` view. Reads only; never commits.
"""

from __future__ import annotations

import datetime as dt

import asyncpg

from engine.database_admin.models import TableStats, Total
from schema.states import PaymentStatus, TransactionType

# The tables the statistics cover: the records and the queues that grow with traffic. Names are
# SQL text, so they come from here only.
MAIN_TABLES = (
    "customers",
    "orders",
    "transactions",
    "refunds",
    "ledger_entries",
    "payment_methods",
    "plans",
    "subscriptions",
    "invoices",
    "events",
    "webhook_endpoints",
    "webhook_deliveries",
    "idempotency_keys",
    "audit_logs",
)


class DatabaseAdminRepository:
    async def ping(self, conn: asyncpg.Connection) -> None:
        await conn.fetchval("SELECT 1")

    async def server_version(self, conn: asyncpg.Connection) -> str:
        """The server's version number (`15.4`), without the build's platform details."""
        return str(await conn.fetchval("SHOW server_version")).split(" ")[0]

    async def table_stats(self, conn: asyncpg.Connection) -> list[TableStats]:
        """Exact row counts and total on-disk bytes (indexes and TOAST included) per table."""
        sql = " UNION ALL ".join(
            f"SELECT '{name}' AS name, (SELECT count(*) FROM {name}) AS row_count,"
            f" pg_total_relation_size('{name}'::regclass) AS total_bytes"
            for name in MAIN_TABLES
        )
        rows = await conn.fetch(sql)
        return [TableStats(r["name"], r["row_count"], r["total_bytes"]) for r in rows]

    async def totals(
        self, conn: asyncpg.Connection, *, first_day: dt.date, last_day: dt.date
    ) -> list[Total]:
        """Counts and sums per type, status and currency over whole UTC days, both ends
        included. Sets the transaction's time zone to UTC: the view's days follow it."""
        await conn.execute("SET LOCAL TimeZone = 'UTC'")
        rows = await conn.fetch(
            """SELECT transaction_type, status, currency,
                      sum(transaction_count) AS count, sum(total_amount) AS amount
               FROM transaction_summary
               WHERE date >= $1::date AND date < $2::date + 1
               GROUP BY transaction_type, status, currency
               ORDER BY transaction_type, status, currency""",
            first_day,
            last_day,
        )
        return [
            Total(
                TransactionType(r["transaction_type"]),
                PaymentStatus(r["status"]),
                r["currency"],
                int(r["count"]),
                # A sum of bigints is numeric: exact, whatever its size.
                int(r["amount"]),
            )
            for r in rows
        ]
