"""Payments generated in bulk for the transaction-summary test and benchmark: one
`INSERT ... SELECT generate_series` each for customers and payments, so a month of 100,000
rows takes seconds. Every row is a payment (a root row) whose balances fit its status, as the
constraints of migration 0001 require; statuses, currencies, amounts and decline codes cycle
through fixed patterns, so the rows are deterministic but for their ids. None is `processing`
or carries an authorization expiry: a running cluster's shards would settle or expire it under a
test's feet."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from uuid import UUID

import asyncpg

_CUSTOMERS_SQL = """
INSERT INTO customers (metadata, erased_at)
SELECT jsonb_build_object('summary', $1::text, 'n', g::text), now() FROM generate_series(1, $2) AS g
RETURNING id
"""

# kind = (g / 3) % 12 picks the outcome; g % 3 the currency, so every outcome meets every one.
# Half of kind 1 (succeeded purchases) is recorded as settled outside paygrid, in cash or by
# bank transfer, as `POST /api/database/transactions` records them.
_PAYMENTS_SQL = """
INSERT INTO transactions (id, customer_id, shard, transaction_type, status, amount, currency,
                          amount_capturable, amount_captured, amount_refunded, gateway,
                          payment_method, decline_code, created_at)
SELECT gen_random_uuid(), ($1::uuid[])[1 + (g * 7) % cardinality($1::uuid[])], 0,
       CASE WHEN kind < 7 THEN 'purchase' ELSE 'authorize' END::transaction_type,
       (ARRAY['succeeded', 'succeeded', 'succeeded', 'succeeded', 'refunded', 'failed',
              'failed', 'authorized', 'captured', 'captured', 'voided', 'expired']
       )[kind + 1]::transaction_status,
       amount, (ARRAY['USD', 'EUR', 'JPY'])[1 + g % 3],
       CASE WHEN kind = 7 THEN amount ELSE 0 END,
       CASE WHEN kind IN (0, 1, 2, 3, 4) THEN amount WHEN kind IN (8, 9) THEN amount / 2 + 1
            ELSE 0 END,
       CASE WHEN kind = 4 THEN amount WHEN kind = 9 THEN amount / 4 ELSE 0 END,
       CASE WHEN recorded THEN 'external' ELSE 'sandbox' END,
       CASE WHEN recorded THEN jsonb_build_object(
           'type', (ARRAY['cash', 'bank_transfer'])[1 + (g / 36) % 2], 'reference', NULL) END,
       CASE WHEN kind IN (5, 6) THEN (ARRAY['generic_decline', 'insufficient_funds',
                                            'expired_card'])[1 + (g / 36) % 3] END,
       $2::timestamptz + ($3::bigint * g / $4) * interval '1 microsecond'
FROM generate_series(0, $4 - 1) AS g,
     LATERAL (SELECT (g / 3) % 12 AS kind, 100 + (g::bigint * 7919) % 99900 AS amount) AS pattern,
     LATERAL (SELECT kind = 1 AND g % 2 = 0 AS recorded) AS settled
"""


async def insert_customers(conn: asyncpg.Connection, *, tag: str, count: int) -> list[UUID]:
    """`count` customers without a profile (as erased ones read: the database refuses PII in
    clear, and sealing a profile takes the application's keys), tagged; their ids."""
    return [row["id"] for row in await conn.fetch(_CUSTOMERS_SQL, tag, count)]


async def insert_payments(
    conn: asyncpg.Connection,
    *,
    customers: list[UUID],
    first: date,
    days: int,
    count: int,
) -> None:
    """`count` payments spread evenly over `days` UTC days from `first`, dealt over
    `customers`."""
    start = datetime.combine(first, time(), tzinfo=UTC)
    await conn.execute(_PAYMENTS_SQL, customers, start, days * 86_400_000_000, count)
