"""The transaction summary job over `--payments` (1,000,000) payments: rows/s with 1 and 2 Ray
workers.

The payments are generated once per run into a dedicated throwaway instance (embedded
PostgreSQL in a temporary directory, removed afterwards), spread over one month, with the
generator the tests use (`tests/summary_rows.py`: one INSERT ... SELECT generate_series, no
audit rows). Then, per worker count, a fresh local Ray with that many CPUs runs the job's own
code (`actors.jobs.transaction_summary.summarize`, then `write_summary`) `--repeat` times, with
`--per-worker` partitions per worker; the first, cold run (Ray starting its workers) is not
counted. rows/s is payments over the wall time from the first task submitted to the last output
file written. The database shares the machine: with two cores, two workers compete with it.

    python -m bench.transaction_summary [--payments 1000000] [--repeat 3] [--per-worker 4]
        [--timeout-s 600]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import asyncpg

from bench import report
from bench.stack import instance, save
from engine.config import Settings
from engine.db import migrations
from engine.jobs.output import write_summary
from engine.jobs.ranges import SummaryRange
from engine.runtime import local
from tests.summary_rows import insert_customers, insert_payments

FIRST = date(2026, 10, 1)
LAST = date(2026, 10, 31)
WORKERS = (1, 2)


async def _generate(settings: Settings, payments: int, timeout_s: float) -> float:
    """Migrate the instance and fill it; returns the seconds it took."""
    conn = await asyncpg.connect(settings.database_dsn)
    try:
        await migrations.migrate(conn)
        await conn.execute("SET session_replication_role = replica")
        started = time.perf_counter()
        customers = await insert_customers(conn, tag=uuid.uuid4().hex[:8], count=20_000)
        await asyncio.wait_for(
            insert_payments(
                conn,
                customers=customers,
                first=FIRST,
                days=(LAST - FIRST).days + 1,
                count=payments,
            ),
            timeout_s,
        )
        await conn.execute("ANALYZE transactions")
        return time.perf_counter() - started
    finally:
        await conn.close()


def _runs(settings: Settings, workers: int, partitions: int, repeat: int) -> list[float]:
    """Seconds of each counted run with a local Ray of `workers` CPUs."""
    import ray

    from actors.jobs.transaction_summary import summarize

    span = SummaryRange.checked(FIRST, LAST)
    os.environ["RAY_GCS_SERVER_PORT"] = str(local.free_port())
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        times = []
        for attempt in range(repeat + 1):
            with tempfile.TemporaryDirectory(prefix="paygrid-summary-") as out:
                started = time.perf_counter()
                summary = summarize(settings.database_url, span, partitions, progress=False)
                write_summary(summary, span, Path(out))
                elapsed = time.perf_counter() - started
            if attempt:
                times.append(elapsed)
        return times
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--per-worker", type=int, default=4, help="partitions per worker")
    parser.add_argument("--timeout-s", type=float, default=600, help="bound on generating rows")
    args = parser.parse_args(argv)
    rows = []
    with instance() as settings:
        generated_s = asyncio.run(_generate(settings, args.payments, args.timeout_s))
        base = 0.0
        for workers in WORKERS:
            partitions = workers * args.per_worker
            times = _runs(settings, workers, partitions, args.repeat)
            median = statistics.median(times)
            rate = args.payments / median
            base = base or rate
            rows.append(
                [
                    str(workers),
                    str(partitions),
                    f"{median:.2f}",
                    f"{min(times):.2f}-{max(times):.2f}",
                    report.rate(rate),
                    report.ratio(rate / base),
                ]
            )
    save(
        "transaction_summary",
        report.markdown(
            f"Transaction summary over {args.payments:,} payments (one month)",
            report.facts(
                {
                    "generated": f"{generated_s:.0f} s (one INSERT ... SELECT)",
                    "runs": f"median of {args.repeat} after a cold run",
                }
            ),
            ["Ray workers", "partitions", "s (median)", "s (min-max)", "rows/s", "vs 1 worker"],
            rows,
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
