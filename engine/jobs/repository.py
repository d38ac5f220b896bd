"""SQL of the transaction summary: one bounded query per partition. Never commits (it only
reads).

One scan of the partition's slice feeds three grouping sets: (day, currency, status, method)
totals (method: `card`, or how a payment recorded as settled outside paygrid was paid),
(currency, customer) captured volume, and failed payments by decline code. The slice is a
`created_at` range over payments (`parent_id IS NULL`), which `idx_transactions_created`
(migration 0001) serves, so a partition reads its own rows and no others.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import asyncpg

from engine.jobs.partials import SummaryPartial, Totals
from engine.records.repository import METHOD_SQL

# GROUPING(day, customer_id, code): a bit is set for each column left out of the row's set.
_BY_DAY, _BY_CUSTOMER, _BY_CODE = 0b011, 0b101, 0b110

_PARTITION_SQL = f"""
SELECT grouping(day, customer_id, code) AS grouping_set,
       day, currency, status, method, customer_id, code,
       count(*) AS n,
       sum(amount)::bigint AS amount,
       sum(amount_captured)::bigint AS captured,
       sum(amount_refunded)::bigint AS refunded,
       count(*) FILTER (WHERE amount_captured > 0) AS captured_count,
       count(*) FILTER (WHERE amount_refunded > 0) AS refunded_count
FROM (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
           currency::text AS currency,
           status::text AS status,
           {METHOD_SQL} AS method,
           customer_id, amount, amount_captured, amount_refunded,
           CASE WHEN status = 'failed'
                THEN coalesce(decline_code, failure_code, 'unknown') END AS code
    FROM transactions t
    WHERE parent_id IS NULL AND created_at >= $1 AND created_at < $2
) AS payments
GROUP BY GROUPING SETS ((day, currency, status, method), (currency, customer_id), (code))
"""


async def read_partition(
    conn: asyncpg.Connection, *, start: datetime, end: datetime
) -> SummaryPartial:
    """The partial summary of payments created in `[start, end)`."""
    partial = SummaryPartial(declines=Counter(), volumes=Counter())
    for row in await conn.fetch(_PARTITION_SQL, start, end):
        grouping_set = row["grouping_set"]
        if grouping_set == _BY_DAY:
            partial.days[(row["day"], row["currency"], row["status"], row["method"])] = Totals(
                count=row["n"],
                amount=row["amount"],
                captured=row["captured"],
                refunded=row["refunded"],
                captured_count=row["captured_count"],
                refunded_count=row["refunded_count"],
            )
            partial.rows += row["n"]
        elif grouping_set == _BY_CUSTOMER:
            partial.volumes[(row["currency"], row["customer_id"])] = row["captured"]
        elif grouping_set == _BY_CODE and row["code"] is not None:
            partial.declines[row["code"]] = row["n"]
    return partial
