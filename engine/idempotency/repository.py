"""SQL of idempotency records. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from engine.idempotency.states import IdempotencyStatus


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    request_hash: bytes
    status: IdempotencyStatus
    response_status: int | None
    response_body: dict[str, Any] | None

    @property
    def completed(self) -> bool:
        return self.status is IdempotencyStatus.COMPLETED


@dataclass(frozen=True, slots=True)
class Claim:
    """A request asking to hold an idempotency key for the resource it will create or move."""

    api_key_id: UUID
    key: str
    request_hash: bytes
    resource_id: UUID


@dataclass(frozen=True, slots=True)
class Answer:
    """The response stored under a key, replayed to every repeat for the key's lifetime."""

    api_key_id: UUID
    key: str
    status_code: int
    body: dict[str, Any]


class IdempotencyRepository:
    async def claim_many(
        self, conn: asyncpg.Connection, *, claims: list[Claim], ttl_h: int
    ) -> dict[tuple[UUID, str], IdempotencyRecord]:
        """Claim every key in one statement (keys must be distinct). Returns the records that
        already held keys: a key absent from the result was claimed now. Expired records are
        taken over as if new. Recovery finishes a record through its resource id."""
        if not claims:
            return {}
        claimed = await conn.fetch(
            """INSERT INTO idempotency_keys (api_key_id, idempotency_key, request_hash, status,
                    resource_id, expires_at)
               SELECT c.api_key_id, c.idempotency_key, c.request_hash, 'processing',
                      c.resource_id, now() + make_interval(hours => $5)
               FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::uuid[])
                    AS c(api_key_id, idempotency_key, request_hash, resource_id)
               ON CONFLICT (api_key_id, idempotency_key) DO UPDATE
                   SET request_hash = EXCLUDED.request_hash, status = 'processing',
                       response_status = NULL, response_body = NULL,
                       resource_id = EXCLUDED.resource_id, created_at = now(),
                       completed_at = NULL, expires_at = EXCLUDED.expires_at
                   WHERE idempotency_keys.expires_at < now()
               RETURNING api_key_id, idempotency_key""",
            [c.api_key_id for c in claims],
            [c.key for c in claims],
            [c.request_hash for c in claims],
            [c.resource_id for c in claims],
            ttl_h,
        )
        if len(claimed) == len(claims):
            return {}
        won = {(r["api_key_id"], r["idempotency_key"]) for r in claimed}
        lost = [c for c in claims if (c.api_key_id, c.key) not in won]
        rows = await conn.fetch(
            """SELECT api_key_id, idempotency_key, request_hash, status, response_status,
                      response_body
               FROM idempotency_keys
               WHERE (api_key_id, idempotency_key) IN (
                   SELECT * FROM unnest($1::uuid[], $2::text[]))""",
            [c.api_key_id for c in lost],
            [c.key for c in lost],
        )
        return {
            (r["api_key_id"], r["idempotency_key"]): IdempotencyRecord(
                bytes(r["request_hash"]),
                IdempotencyStatus(r["status"]),
                r["response_status"],
                r["response_body"],
            )
            for r in rows
        }

    async def complete_many(self, conn: asyncpg.Connection, *, answers: list[Answer]) -> None:
        """Store the answers under their keys, in one statement."""
        if not answers:
            return
        await conn.execute(
            """UPDATE idempotency_keys i SET status = 'completed', response_status = a.status,
                    response_body = a.body, completed_at = now()
               FROM unnest($1::uuid[], $2::text[], $3::int[], $4::jsonb[])
                    AS a(api_key_id, idempotency_key, status, body)
               WHERE i.api_key_id = a.api_key_id AND i.idempotency_key = a.idempotency_key""",
            [a.api_key_id for a in answers],
            [a.key for a in answers],
            [a.status_code for a in answers],
            [a.body for a in answers],
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

    async def release_for_resource(self, conn: asyncpg.Connection, *, resource_id: UUID) -> None:
        """Recovery's other way out: free the key that was waiting on `resource_id`, whose
        request never reached the gateway, so a retry with it runs afresh."""
        await conn.execute(
            "DELETE FROM idempotency_keys WHERE resource_id = $1 AND status = 'processing'",
            resource_id,
        )

    async def purge_expired(self, conn: asyncpg.Connection, *, limit: int) -> int:
        """Delete up to `limit` records past their expiry; returns how many went."""
        done = await conn.execute(
            """DELETE FROM idempotency_keys WHERE (api_key_id, idempotency_key) IN (
                   SELECT api_key_id, idempotency_key FROM idempotency_keys
                   WHERE expires_at < now() LIMIT $1)""",
            limit,
        )
        return int(done.split()[-1])
