"""SQL of scheduled jobs. Never commits."""

from __future__ import annotations

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
    attempts: int


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

    async def claim(self, conn: asyncpg.Connection, *, limit: int, lease_s: float) -> list[Job]:
        """Lease up to `limit` due jobs (none while the queue is paused)."""
        rows = await conn.fetch(
            """WITH due AS (
                   SELECT id FROM scheduled_jobs
                   WHERE status = 'pending' AND run_at <= now()
                     AND (claimed_until IS NULL OR claimed_until < now())
                     AND NOT (SELECT paused FROM queue_state WHERE queue = 'scheduler')
                   ORDER BY run_at LIMIT $1
                   FOR UPDATE SKIP LOCKED)
               UPDATE scheduled_jobs j
               SET claimed_until = now() + make_interval(secs => $2), attempts = j.attempts + 1
               FROM due WHERE j.id = due.id
               RETURNING j.id, j.kind, j.payload, j.attempts""",
            limit,
            lease_s,
        )
        return [Job(r["id"], r["kind"], r["payload"], r["attempts"]) for r in rows]

    async def settle(
        self,
        conn: asyncpg.Connection,
        *,
        job_id: UUID,
        status: str,
        retry_in_s: float | None = None,
        error: str | None = None,
    ) -> None:
        await conn.execute(
            """UPDATE scheduled_jobs SET status = $2, last_error = $4, claimed_until = NULL,
                   run_at = CASE WHEN $3::float8 IS NULL THEN run_at
                                 ELSE now() + make_interval(secs => $3) END,
                   completed_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END
               WHERE id = $1""",
            job_id,
            status,
            retry_in_s,
            error,
        )
