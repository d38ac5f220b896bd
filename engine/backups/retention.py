"""Scheduled backups: one file per run in the backup directory, named by its time, and only the
newest `keep` kept. Files of another name (an operator's own backups) are never touched."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

_NAME = re.compile(r"paygrid-\d{8}T\d{6}Z\.backup")


def scheduled_name(at: datetime) -> str:
    """The file name of a scheduled backup taken at `at` (UTC); names sort by time."""
    return f"paygrid-{at.strftime('%Y%m%dT%H%M%SZ')}.backup"


def prune(folder: Path, *, keep: int) -> list[Path]:
    """Delete scheduled backups beyond the newest `keep`; returns those deleted."""
    found = sorted(p for p in folder.iterdir() if _NAME.fullmatch(p.name))
    stale = found[:-keep] if keep else found
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
