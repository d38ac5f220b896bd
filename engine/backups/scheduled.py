"""The scheduled backup: a recurring job on the scheduler queue (off unless
`PAYGRID_BACKUP_ENABLED`), every `backup_interval_h`, into `backup_dir`, keeping the newest
`backup_keep`. A run writes a new file and only then prunes, so a failed run never costs an
older backup; a run retried after a crash writes another file, which retention absorbs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.backups.keys import backup_keys
from engine.backups.retention import prune, scheduled_name
from engine.backups.service import Backups
from engine.config import Settings
from engine.db.database import Database
from engine.scheduler.handlers import Handler, Recurring

JOB_KIND = "backups.run"

log = logging.getLogger("paygrid.backups")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ScheduledBackups:
    """Takes a backup into a folder and keeps the newest `keep`."""

    def __init__(
        self,
        backups: Backups,
        folder: Path,
        *,
        keep: int,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._backups = backups
        self._folder = folder
        self._keep = keep
        self._clock = clock

    async def run(self, db: Database, payload: dict[str, Any]) -> None:
        """The job's handler: one backup, then retention."""
        self._folder.mkdir(parents=True, exist_ok=True)
        out = self._folder / scheduled_name(self._clock())
        manifest = await self._backups.backup(out)
        removed = prune(self._folder, keep=self._keep)
        log.info(
            "backup %s taken (schema %s); %d older removed",
            out.name,
            manifest.schema_version,
            len(removed),
        )


def backup_jobs(settings: Settings) -> tuple[dict[str, Handler], Recurring]:
    """The backup job's handler and its schedule, when scheduled backups are on."""
    if not settings.backup_enabled:
        return {}, {}
    backups = Backups(settings.database_dsn, backup_keys(settings), pg_bin=settings.backup_pg_bin)
    job = ScheduledBackups(
        backups, Path(settings.backups_path).resolve(), keep=settings.backup_keep
    )
    return {JOB_KIND: job.run}, {JOB_KIND: ({}, settings.backup_interval_h * 3600)}
