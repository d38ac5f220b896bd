"""The transaction summary run as a Ray job through the job submission API, against the
session's cluster: over a generated month of 100,000 payments its totals equal a direct SQL
aggregate of the same range, table by table."""

from __future__ import annotations

import asyncio
import calendar
import random
import shlex
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow.parquet as pq
from ray.job_submission import JobStatus, JobSubmissionClient

from engine.config import Settings
from tests.summary_rows import insert_customers, insert_payments
from tests.waiting import wait_until

PAYMENTS = 100_000

# The method written out, not METHOD_SQL: the test checks the job's SQL, not itself.
_DAILY_SQL = """
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, currency::text, status::text,
       CASE WHEN gateway = 'external' THEN payment_method ->> 'type' ELSE 'card' END AS method,
       count(*) AS count, sum(amount)::bigint AS amount,
       sum(amount_captured)::bigint AS captured, sum(amount_refunded)::bigint AS refunded
FROM transactions
WHERE parent_id IS NULL AND created_at >= $1 AND created_at < $2 AND customer_id = ANY($3)
GROUP BY 1, 2, 3, 4
"""

_DECLINES_SQL = """
SELECT coalesce(decline_code, failure_code, 'unknown') AS code, count(*) AS count
FROM transactions
WHERE parent_id IS NULL AND status = 'failed' AND created_at >= $1 AND created_at < $2
  AND customer_id = ANY($3)
GROUP BY 1
"""

_TOP_SQL = """
SELECT currency::text, customer_id::text, sum(amount_captured)::bigint AS volume
FROM transactions
WHERE parent_id IS NULL AND created_at >= $1 AND created_at < $2 AND customer_id = ANY($3)
GROUP BY 1, 2
"""


def _rows(path: Path, *columns: str) -> set[tuple[Any, ...]]:
    table = pq.read_table(path).to_pydict()
    return set(zip(*(table[c] for c in columns), strict=True))


async def _generate(dsn: str, first: date, days: int) -> list[uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    try:
        # Bulk test rows need no audit trail: 100,000 audit rows would double the insert's time.
        await conn.execute("SET session_replication_role = replica")
        customers = await insert_customers(conn, tag=uuid.uuid4().hex[:8], count=2_000)
        await insert_payments(conn, customers=customers, first=first, days=days, count=PAYMENTS)
        return customers
    finally:
        await conn.close()


async def test_job_totals_equal_a_direct_aggregate(
    cluster: Settings, jobs_api_url: str, tmp_path: Path
) -> None:
    # A month long before any other test's rows (they are created now).
    first = date(random.randint(1975, 2015), random.randint(1, 12), 1)
    days = calendar.monthrange(first.year, first.month)[1]
    last = first + timedelta(days=days - 1)
    customers = await _generate(cluster.database_dsn, first, days)

    client = await asyncio.to_thread(JobSubmissionClient, jobs_api_url)
    command = [sys.executable, "-m", "actors.jobs.transaction_summary"]
    command += ["--from", first.isoformat(), "--to", last.isoformat(), "--out", str(tmp_path)]
    submission = await asyncio.to_thread(
        client.submit_job,
        entrypoint=shlex.join(command),
        runtime_env={"env_vars": {"PAYGRID_DATA_DIR": cluster.data_dir}},
    )

    async def finished() -> bool:
        status = await asyncio.to_thread(client.get_job_status, submission)
        return bool(status.is_terminal())

    await wait_until(finished, timeout_s=240, what="the summary job to finish")
    status = await asyncio.to_thread(client.get_job_status, submission)
    logs = await asyncio.to_thread(client.get_job_logs, submission)
    assert status == JobStatus.SUCCEEDED, logs
    assert f"{PAYMENTS} payments summarized" in logs

    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = start + timedelta(days=days)
    conn = await asyncpg.connect(cluster.database_dsn)
    try:
        daily = {tuple(r) for r in await conn.fetch(_DAILY_SQL, start, end, customers)}
        declines = {tuple(r) for r in await conn.fetch(_DECLINES_SQL, start, end, customers)}
        volumes = await conn.fetch(_TOP_SQL, start, end, customers)
    finally:
        await conn.close()

    assert sum(row[4] for row in daily) == PAYMENTS
    assert {row[3] for row in daily} == {"card", "cash", "bank_transfer"}
    columns = ("day", "currency", "status", "method", "count", "amount", "captured", "refunded")
    written = _rows(tmp_path / "daily.parquet", *columns)
    assert sorted(written - daily)[:3] == sorted(daily - written)[:3] == []
    assert _rows(tmp_path / "declines.parquet", "code", "count") == declines
    for currency in ("USD", "EUR", "JPY"):
        ranked = sorted(
            ((r["volume"], r["customer_id"]) for r in volumes if r["currency"] == currency),
            key=lambda vc: (-vc[0], vc[1]),
        )[:10]
        expected = {(currency, rank, c, v) for rank, (v, c) in enumerate(ranked, start=1)}
        written = _rows(
            tmp_path / "top_customers.parquet", "currency", "rank", "customer_id", "volume"
        )
        assert {row for row in written if row[0] == currency} == expected
    assert (tmp_path / "daily.csv").exists()
    assert (tmp_path / "daily_volume.png").read_bytes().startswith(b"\x89PNG")
