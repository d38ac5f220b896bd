"""SQL of scheduled jobs: adding them, and loading the ones leased. Never commits.

Claims, settles and replays are the lease queue's (`engine.queueing.repository`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class Job:
    id: UUID
    kind: str
    payload: dict[str, Any]


class JobRepository:
    async def enqueue(
        self,
        conn: asyncpg.Connection,
        *,
        kind: str,
        payload: dict[str, Any],
        run_at: datetime | None = None,
        dedupe_key: str | None = None,
    ) -> UUID | None:
        """Add a job (in the caller's transaction, so it exists exactly when the change that
        needs it does). None when a live job already holds `dedupe_key`."""
        return await conn.fetchval(  # type: ignore[no-any-return]
            """INSERT INTO scheduled_jobs (kind, payload, run_at, dedupe_key)
               VALUES ($1, $2, coalesce($3, now()), $4)
               ON CONFLICT (dedupe_key) WHERE status = 'pending' AND dedupe_key IS NOT NULL
               DO NOTHING RETURNING id""",
            kind,
            payload,
            run_at,
            dedupe_key,
        )

    async def enqueue_many(
        self,
        conn: asyncpg.Connection,
        *,
        kind: str,
        jobs: Sequence[tuple[dict[str, Any], datetime | None, str]],
    ) -> None:
        """`enqueue` for many jobs of one kind, each (payload, run_at or None for now,
        dedupe_key), in one statement; those whose dedupe key a live job holds are left out."""
        if not jobs:
            return
        await conn.execute(
            """INSERT INTO scheduled_jobs (kind, payload, run_at, dedupe_key)
               SELECT $1, u.payload, coalesce(u.run_at, now()), u.dedupe_key
               FROM unnest($2::jsonb[], $3::timestamptz[], $4::text[])
                    AS u(payload, run_at, dedupe_key)
               ON CONFLICT (dedupe_key) WHERE status = 'pending' AND dedupe_key IS NOT NULL
               DO NOTHING""",
            kind,
            [payload for payload, _, _ in jobs],
            [run_at for _, run_at, _ in jobs],
            [key for _, _, key in jobs],
        )

    async def jobs(self, conn: asyncpg.Connection, *, job_ids: Sequence[UUID]) -> dict[UUID, Job]:
        """The jobs behind leases, by id."""
        rows = await conn.fetch(
            "SELECT id, kind, payload FROM scheduled_jobs WHERE id = ANY($1::uuid[])",
            list(job_ids),
        )
        return {r["id"]: Job(r["id"], r["kind"], r["payload"]) for r in rows}
