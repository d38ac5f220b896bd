"""Backup, verify and restore of `--payments` (1,000,000) payments: seconds and file size.

The payments are generated into a throwaway instance on the embedded PostgreSQL (as `make run`
starts it, so its own pg_dump, pg_restore and psql do the work), with the generator the tests
use (`tests/summary_rows.py`), plus a ledger entry for each captured payment and an event for
every payment (one INSERT ... SELECT each, triggers off). Then `paygrid backup`'s code takes a
backup, verifies it, and restores it into a new, empty database of the same server (the
manifest checked inside the restore's transaction). Everything shares the machine.

    python -m bench.backup [--payments 1000000] [--timeout-s 1800]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench import report
from bench.stack import instance, save
from engine.backups.keys import backup_keys
from engine.backups.service import Backups
from engine.config import Settings
from engine.db import migrations
from tests.summary_rows import insert_customers, insert_payments

FIRST = date(2026, 10, 1)
DAYS = 31

_LEDGER_SQL = """
INSERT INTO ledger_entries (customer_id, transaction_id, account, currency, amount, created_at)
SELECT customer_id, id, 'captured', currency, amount_captured, created_at
FROM transactions WHERE amount_captured > 0
"""
_EVENTS_SQL = """
INSERT INTO events (event_type, object_type, object_id, payload, created_at)
SELECT 'payment.' || status, 'payment', id,
       jsonb_build_object('id', id, 'amount', amount, 'currency', currency, 'status', status),
       created_at
FROM transactions
"""


async def _generate(dsn: str, payments: int, timeout_s: float) -> tuple[float, int]:
    """Migrate and fill the database; the seconds it took and its size in bytes."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrations.migrate(conn)
        await conn.execute("SET session_replication_role = replica")
        started = time.perf_counter()
        customers = await insert_customers(conn, tag=uuid.uuid4().hex[:8], count=20_000)
        fill = insert_payments(conn, customers=customers, first=FIRST, days=DAYS, count=payments)
        await asyncio.wait_for(fill, timeout_s)
        await conn.execute(_LEDGER_SQL)
        await conn.execute(_EVENTS_SQL)
        elapsed = time.perf_counter() - started
        size = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
        return elapsed, size
    finally:
        await conn.close()


def _sibling(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def _measure(settings: Settings, out: Path) -> dict[str, float]:
    keys = backup_keys(settings)
    source = Backups(settings.database_dsn, keys)
    started = time.perf_counter()
    await source.backup(out)
    backup_s = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.to_thread(source.verify, out)
    verify_s = time.perf_counter() - started
    admin = await asyncpg.connect(settings.database_dsn)
    try:
        await admin.execute('CREATE DATABASE "restored"')
    finally:
        await admin.close()
    started = time.perf_counter()
    await Backups(_sibling(settings.database_dsn, "restored"), keys).restore(out)
    restore_s = time.perf_counter() - started
    return {"backup": backup_s, "verify": verify_s, "restore": restore_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--timeout-s", type=float, default=1800, help="bound on generating rows")
    args = parser.parse_args(argv)
    with instance() as settings, tempfile.TemporaryDirectory(prefix="paygrid-backup-") as tmp:
        generated_s, size = asyncio.run(
            _generate(settings.database_dsn, args.payments, args.timeout_s)
        )
        out = Path(tmp) / "bench.backup"
        times = asyncio.run(_measure(settings, out))
        file_size = out.stat().st_size
    mib = 1024 * 1024
    save(
        "backup",
        report.markdown(
            f"Backup and restore of {args.payments:,} payments",
            report.facts(
                {
                    "generated": f"{generated_s:.0f} s (payments, ledger entries, events)",
                    "database": f"{size / mib:,.0f} MiB on disk",
                }
            ),
            ["payments", "backup s", "file MiB", "verify s", "restore s", "payments/s restored"],
            [
                [
                    f"{args.payments:,}",
                    f"{times['backup']:.1f}",
                    f"{file_size / mib:,.1f}",
                    f"{times['verify']:.1f}",
                    f"{times['restore']:.1f}",
                    report.rate(args.payments / times["restore"]),
                ]
            ],
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
