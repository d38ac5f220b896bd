"""SQL of a customer's export: everything held about one customer, read table by table. Never
commits.

An export is a document, not an API object: each row comes back as the JSON the database makes
of it (`to_jsonb`), less the columns that are secrets or internal bookkeeping (ciphertext,
fingerprints, API key ids, shard slots). Cards show brand, last4 and expiry only.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

# Never exported: sealed values, keyed digests, and which API key or shard wrote a row.
_HIDDEN = (
    "ciphertext",
    "data_key_id",
    "email_index",
    "fingerprint",
    "api_key_id",
    "correlation_id",
    "shard",
    "slot",
    "email",
    "first_name",
    "last_name",
    "phone",
    "address",
)

Document = dict[str, Any]


class ExportRepository:
    async def held_about(self, conn: asyncpg.Connection, *, customer_id: UUID) -> dict[str, Any]:
        """Every row naming the customer, by section (`orders`, `transactions`, `refunds`,
        `payment_methods`, `subscriptions`, `invoices`, `events`), oldest first."""
        hidden = list(_HIDDEN)
        sections: dict[str, Any] = {}
        sections["orders"] = await self._rows(
            conn, "orders", "customer_id = $1", customer_id, hidden
        )
        transactions = await conn.fetch(
            """SELECT to_jsonb(t) - $2::text[]
                    || jsonb_build_object('payment_method', CASE WHEN payment_method IS NOT NULL
                        THEN jsonb_build_object('brand', payment_method ->> 'brand',
                                                'last4', payment_method ->> 'last4') END) AS doc
                FROM transactions t WHERE customer_id = $1 ORDER BY created_at, id""",
            customer_id,
            hidden,
        )
        sections["transactions"] = [r["doc"] for r in transactions]
        sections["refunds"] = await self._rows(
            conn,
            "refunds",
            "transaction_id IN (SELECT id FROM transactions WHERE customer_id = $1)",
            customer_id,
            hidden,
        )
        methods = await conn.fetch(
            """SELECT jsonb_build_object('id', id, 'type', type, 'status', status,
                   'brand', brand, 'last4', last4, 'created_at', created_at,
                   'detached_at', detached_at) AS doc
               FROM payment_methods WHERE customer_id = $1 ORDER BY created_at, id""",
            customer_id,
        )
        sections["payment_methods"] = [r["doc"] for r in methods]
        for table in ("subscriptions", "invoices"):
            sections[table] = await self._rows(conn, table, "customer_id = $1", customer_id, hidden)
        owned = [customer_id] + [
            UUID(d["id"])
            for name in ("orders", "transactions", "payment_methods", "subscriptions", "invoices")
            for d in sections[name]
        ]
        events = await conn.fetch(
            """SELECT jsonb_build_object('id', id, 'type', event_type, 'object_type', object_type,
                   'object_id', object_id, 'data', payload, 'created_at', created_at) AS doc
               FROM events WHERE object_id = ANY($1::uuid[]) ORDER BY created_at, id""",
            owned,
        )
        sections["events"] = [r["doc"] for r in events]
        return sections

    async def _rows(
        self,
        conn: asyncpg.Connection,
        table: str,
        where: str,
        customer_id: UUID,
        hidden: list[str],
    ) -> list[Document]:
        # `table` and `where` are this module's constants, never input.
        rows = await conn.fetch(
            f"""SELECT to_jsonb(r) - $2::text[] AS doc FROM {table} r
                WHERE {where} ORDER BY created_at, id""",
            customer_id,
            hidden,
        )
        return [r["doc"] for r in rows]
