"""The scheduled backup on the scheduler queue: off unless enabled; a run writes a backup that
verifies, into the configured folder, and keeps only the newest `backup_keep` (an operator's
own files there are left alone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from engine.backups.scheduled import JOB_KIND, ScheduledBackups, backup_jobs
from engine.config import Settings
from engine.db.database import Database
from engine.scheduler.repository import JobRepository
from engine.scheduler.service import Scheduler
from tests.engine.backups.conftest import Scratch, backups
from tests.engine.payments.harness import MASTER_KEY
from tests.engine.scheduler.test_scheduler import QUICK
from tests.waiting import wait_until


def test_off_by_default_and_configurable(tmp_path: Path) -> None:
    assert backup_jobs(Settings(master_key=SecretStr(MASTER_KEY))) == ({}, {})
    handlers, recurring = backup_jobs(
        Settings(
            master_key=SecretStr(MASTER_KEY),
            backup_enabled=True,
            backup_interval_h=6,
            backup_dir=str(tmp_path),
        )
    )
    assert list(handlers) == [JOB_KIND]
    assert recurring == {JOB_KIND: ({}, 6 * 3600.0)}
    assert Settings().backup_interval_h == 24
    assert Settings().backup_keep == 7


async def test_runs_on_the_queue_and_keeps_the_newest(
    scratch: Scratch, scratch_db: Database, tmp_path: Path
) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "operator-own.backup").write_bytes(b"kept")
    times = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=d) for d in range(10))
    job = ScheduledBackups(backups(scratch.dsn), folder, keep=2, clock=lambda: next(times))
    scheduler = Scheduler(scratch_db, {JOB_KIND: job.run}, QUICK)

    for run in range(3):
        async with scratch_db.connection() as conn:
            await JobRepository().enqueue(conn, kind=JOB_KIND, payload={})

        async def done(runs: int = run + 1) -> bool:
            await scheduler.worker.pump()
            await scheduler.worker.drain()
            async with scratch_db.connection() as conn:
                finished = await conn.fetchval(
                    "SELECT count(*) FROM scheduled_jobs WHERE status = 'succeeded'"
                )
            return bool(finished == runs)

        await wait_until(done, what="the backup job to succeed", timeout_s=60)

    kept = sorted(p.name for p in folder.iterdir())
    assert kept == [
        "operator-own.backup",
        "paygrid-20260102T000000Z.backup",
        "paygrid-20260103T000000Z.backup",
    ]
    manifest = backups(scratch.dsn).verify(folder / kept[-1])
    assert manifest.created_at.tzinfo is not None
