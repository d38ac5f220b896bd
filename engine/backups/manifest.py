"""What a backup holds, written into it (its first frame) and checked after a restore: when it
was taken, how (`dump`: pg_dump of the database; `basebackup`: pg_basebackup of the whole
server), the migrations applied, each table's row count and the ledger's totals per currency
and account, and the WAL position of the snapshot they were read in.

A dump is taken from that very snapshot, so its counts are exact. A base backup cannot be:
PostgreSQL makes it consistent as of the end of the copy, which is after the snapshot, so the
restored server holds the manifest's rows plus whatever committed while the copy ran (exactly
the manifest's when nothing wrote meanwhile).

`check_restorable` refuses, before anything is touched, a backup this release cannot run on:
one with a migration it does not ship (a newer release's) or one whose applied migration
differs from the file shipped here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from engine.db.migrations import Migration
from engine.errors import BackupError

FORMAT = 1
DUMP = "dump"
BASEBACKUP = "basebackup"
METHODS = (DUMP, BASEBACKUP)


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: datetime
    server_version_num: int
    dump_major: int
    migrations: dict[str, str]
    row_counts: dict[str, int]
    ledger_totals: dict[str, dict[str, int]]
    method: str = DUMP
    wal_lsn: str = ""

    @property
    def schema_version(self) -> str:
        """The newest migration applied."""
        return max(self.migrations, default="none")

    def encode(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "created_at": self.created_at.isoformat(),
                "server_version_num": self.server_version_num,
                "dump_major": self.dump_major,
                "schema_version": self.schema_version,
                "migrations": self.migrations,
                "row_counts": self.row_counts,
                "ledger_totals": self.ledger_totals,
                "method": self.method,
                "wal_lsn": self.wal_lsn,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Manifest:
        try:
            found = json.loads(raw)
            return cls(
                datetime.fromisoformat(found["created_at"]),
                int(found["server_version_num"]),
                int(found["dump_major"]),
                {str(k): str(v) for k, v in found["migrations"].items()},
                {str(k): int(v) for k, v in found["row_counts"].items()},
                {
                    str(c): {str(a): int(t) for a, t in accounts.items()}
                    for c, accounts in found["ledger_totals"].items()
                },
                # Backups made before base backups existed are dumps.
                _method(found.get("method", DUMP)),
                str(found.get("wal_lsn", "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise BackupError("the backup's manifest is unreadable") from None


def _method(raw: object) -> str:
    if raw not in METHODS:
        raise BackupError(f"the backup's method {raw!r} is not one this release reads")
    return str(raw)


def check_restorable(manifest: Manifest, shipped: list[Migration]) -> None:
    """Refuse a backup whose schema this release cannot run: a migration it does not ship, or
    an applied one that differs from this release's file."""
    files = {m.version: m for m in shipped}
    newer = sorted(set(manifest.migrations) - set(files))
    if newer:
        raise BackupError(
            f"the backup is from a newer schema (migration {', '.join(newer)} is unknown to "
            "this release): restore it with the release that made it, or a later one",
            code="backup_schema_newer",
        )
    changed = sorted(v for v, c in manifest.migrations.items() if files[v].checksum != c)
    if changed:
        raise BackupError(
            f"the backup's migration {', '.join(changed)} differs from this release's file of "
            "the same number: restore it with the release that made it",
            code="backup_schema_changed",
        )
