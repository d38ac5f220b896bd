"""SQL of idempotency records. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    request_hash: bytes
    completed: bool
    response_status: int | None
    response_body: dict[str, Any] | None


class IdempotencyRepository:
    async def claim(
        self,
        conn: asyncpg.Connection,
        *,
        api_key_id: UUID,
        key: str,
        request_hash: bytes,
        resource_id: UUID,
        ttl_h: int,
    ) -> IdempotencyRecord | None:
        """Claim the key for this request and the resource it will create or move (recovery
        finishes the record through it). None when claimed now; otherwise the record that holds
        the key. Expired records are taken over as if new."""
        row = await conn.fetchrow(
            """INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, status,
                    resource_id, expires_at)
               VALUES ($1, $2, $3, 'processing', $4, now() + make_interval(hours => $5))
               ON CONFLICT (api_key_id, idempotency_key) DO UPDATE
                   SET request_hash = EXCLUDED.request_hash, status = 'processing',
                       response_status = NULL, response_body = NULL, resource_id = $4,
                       created_at = now(), completed_at = NULL, expires_at = EXCLUDED.expires_at
                   WHERE idempotency_keys.expires_at < now()
               RETURNING 1""",
            api_key_id,
            key,
            request_hash,
            resource_id,
            ttl_h,
        )
        if row is not None:
            return None
        existing = await conn.fetchrow(
            """SELECT request_hash, status, response_status, response_body FROM idempotency_keys
               WHERE api_key_id = $1 AND idempotency_key = $2""",
            api_key_id,
            key,
        )
        return IdempotencyRecord(
            bytes(existing["request_hash"]),
            existing["status"] == "completed",
            existing["response_status"],
            existing["response_body"],
        )

    async def complete(
        self,
        conn: asyncpg.Connection,
        *,
        api_key_id: UUID,
        key: str,
        status_code: int,
        body: dict[str, Any],
    ) -> None:
        await conn.execute(
            """UPDATE idempotency_keys SET status = 'completed', response_status = $3,
                    response_body = $4, completed_at = now()
               WHERE api_key_id = $1 AND idempotency_key = $2""",
            api_key_id,
            key,
            status_code,
            body,
        )

    async def complete_for_resource(
        self, conn: asyncpg.Connection, *, resource_id: UUID, status_code: int, body: dict[str, Any]
    ) -> None:
        """Recovery's way in: finish whatever key was waiting on `resource_id`."""
        await conn.execute(
            """UPDATE idempotency_keys SET status = 'completed', response_status = $2,
                    response_body = $3, completed_at = now()
               WHERE resource_id = $1 AND status = 'processing'""",
            resource_id,
            status_code,
            body,
        )

    async def purge_expired(self, conn: asyncpg.Connection) -> int:
        done = await conn.execute("DELETE FROM idempotency_keys WHERE expires_at < now()")
        return int(done.split()[-1])
