"""SQL of webhook endpoints, the deliveries behind leases, and attempts. Never commits.

The lease queue itself (claims, settles, replays, pausing) is `engine.queueing`'s; this
repository holds what only webhooks have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from engine.principal import Principal
from engine.webhooks.delivery import Attempt
from engine.webhooks.models import Claimed, Delivery, Endpoint, RecordedAttempt
from engine.webhooks.states import DeliveryStatus, EndpointStatus

_ENDPOINT_COLUMNS = """id, url, description, enabled_events, status, disabled_reason,
    secret_sealed, previous_secret_sealed, previous_secret_until, failing_since, metadata,
    created_at, updated_at"""

# Columns `update_endpoint` may change.
_CHANGEABLE = frozenset(
    {
        "url",
        "enabled_events",
        "description",
        "metadata",
        "status",
        "disabled_reason",
        "secret_sealed",
        "previous_secret_sealed",
        "previous_secret_until",
        "failing_since",
    }
)


def _endpoint(r: asyncpg.Record) -> Endpoint:
    return Endpoint(
        r["id"],
        r["url"],
        r["description"],
        list(r["enabled_events"]),
        EndpointStatus(r["status"]),
        r["disabled_reason"],
        r["secret_sealed"],
        r["previous_secret_sealed"],
        r["previous_secret_until"],
        r["failing_since"],
        r["metadata"],
        r["created_at"],
        r["updated_at"],
    )


def _claimed(r: asyncpg.Record) -> Claimed:
    return Claimed(
        r["delivery_id"],
        r["event_id"],
        r["event_type"],
        r["event_created"],
        r["payload"],
        r["correlation_id"],
        _endpoint(r),
    )


def _delivery(r: asyncpg.Record) -> Delivery:
    return Delivery(
        r["id"],
        r["event_id"],
        r["endpoint_id"],
        r["event_type"],
        DeliveryStatus(r["status"]),
        r["attempts"],
        r["next_attempt_at"],
        r["last_error"],
        r["created_at"],
        r["completed_at"],
        tuple(RecordedAttempt(*a) for a in r["attempt_log"]),
    )


class WebhookRepository:
    async def insert_endpoint(
        self,
        conn: asyncpg.Connection,
        *,
        endpoint_id: UUID,
        url: str,
        enabled_events: list[str],
        description: str | None,
        metadata: dict[str, str],
        secret_sealed: bytes,
        principal: Principal,
    ) -> Endpoint:
        row = await conn.fetchrow(
            f"""INSERT INTO webhook_endpoints (id, url, enabled_events, description, metadata,
                    secret_sealed, api_key_id, correlation_id)
                VALUES ($8, $1, $2, $3, $4, $5, $6, $7) RETURNING {_ENDPOINT_COLUMNS}""",
            url,
            enabled_events,
            description,
            metadata,
            secret_sealed,
            principal.api_key_id,
            principal.correlation_id,
            endpoint_id,
        )
        return _endpoint(row)

    async def endpoint(self, conn: asyncpg.Connection, *, endpoint_id: UUID) -> Endpoint | None:
        row = await conn.fetchrow(
            f"""SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
                WHERE id = $1 AND status <> 'deleted'""",
            endpoint_id,
        )
        return None if row is None else _endpoint(row)

    async def endpoints(
        self, conn: asyncpg.Connection, *, limit: int, starting_after: UUID | None
    ) -> tuple[list[Endpoint], bool]:
        rows = await conn.fetch(
            f"""SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
                WHERE status <> 'deleted'
                  AND ($2::uuid IS NULL OR (created_at, id) < (
                        SELECT created_at, id FROM webhook_endpoints WHERE id = $2))
                ORDER BY created_at DESC, id DESC LIMIT $1""",
            limit + 1,
            starting_after,
        )
        return [_endpoint(r) for r in rows[:limit]], len(rows) > limit

    async def update_endpoint(
        self,
        conn: asyncpg.Connection,
        *,
        endpoint_id: UUID,
        changes: dict[str, Any],
        principal: Principal,
    ) -> Endpoint | None:
        """Apply `changes` (column → value, columns from a fixed set) to a live endpoint."""
        if not set(changes) <= _CHANGEABLE:
            raise ValueError(f"cannot change {sorted(set(changes) - _CHANGEABLE)}")
        sets = ", ".join(f"{name} = ${i + 4}" for i, name in enumerate(changes))
        row = await conn.fetchrow(
            f"""UPDATE webhook_endpoints SET {sets}, api_key_id = $2, correlation_id = $3,
                    updated_at = now()
                WHERE id = $1 AND status <> 'deleted' RETURNING {_ENDPOINT_COLUMNS}""",
            endpoint_id,
            principal.api_key_id,
            principal.correlation_id,
            *changes.values(),
        )
        return None if row is None else _endpoint(row)

    async def mark_failing(
        self, conn: asyncpg.Connection, *, endpoint_id: UUID, principal: Principal
    ) -> Endpoint | None:
        """Note a failed delivery: the endpoint is failing since its first failure in a row.
        The row's `updated_at` is now, so `updated_at - failing_since` is how long it has."""
        row = await conn.fetchrow(
            f"""UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()),
                    api_key_id = $2, correlation_id = $3, updated_at = now()
                WHERE id = $1 AND status <> 'deleted' RETURNING {_ENDPOINT_COLUMNS}""",
            endpoint_id,
            principal.api_key_id,
            principal.correlation_id,
        )
        return None if row is None else _endpoint(row)

    async def disable(
        self, conn: asyncpg.Connection, *, endpoint_id: UUID, reason: str, principal: Principal
    ) -> Endpoint | None:
        """Disable an enabled endpoint; None when it was not enabled (already disabled by
        another delivery, or deleted), so the caller announces it exactly once."""
        row = await conn.fetchrow(
            f"""UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = $2,
                    api_key_id = $3, correlation_id = $4, updated_at = now()
                WHERE id = $1 AND status = 'enabled' RETURNING {_ENDPOINT_COLUMNS}""",
            endpoint_id,
            reason,
            principal.api_key_id,
            principal.correlation_id,
        )
        return None if row is None else _endpoint(row)

    async def claimed(
        self, conn: asyncpg.Connection, *, delivery_ids: Sequence[UUID]
    ) -> dict[UUID, Claimed]:
        """What leased deliveries need to be sent: their event and endpoint, by delivery id."""
        rows = await conn.fetch(
            f"""SELECT d.id AS delivery_id, ev.id AS event_id, ev.event_type,
                       ev.created_at AS event_created, ev.payload, ev.correlation_id,
                       {", ".join("e." + c.strip() for c in _ENDPOINT_COLUMNS.split(","))}
                FROM webhook_deliveries d
                JOIN events ev ON ev.id = d.event_id
                JOIN webhook_endpoints e ON e.id = d.endpoint_id
                WHERE d.id = ANY($1::uuid[])""",
            list(delivery_ids),
        )
        return {r["delivery_id"]: _claimed(r) for r in rows}

    async def newest_pending(
        self, conn: asyncpg.Connection, *, endpoint_id: UUID, event_type: str
    ) -> UUID | None:
        """The newest unclaimed pending delivery of `event_type` to one endpoint (a test send
        finds the delivery it just created this way)."""
        return await conn.fetchval(  # type: ignore[no-any-return]
            """SELECT id FROM webhook_deliveries
               WHERE endpoint_id = $1 AND event_type = $2 AND status = 'pending'
                 AND claimed_until IS NULL
               ORDER BY created_at DESC LIMIT 1""",
            endpoint_id,
            event_type,
        )

    async def record_attempts(
        self, conn: asyncpg.Connection, *, attempts: Sequence[tuple[UUID, Attempt]]
    ) -> None:
        """Record attempts (delivery id, attempt) in one statement, however many, each with
        its delivery's correlation id (its event's: the request that caused it)."""
        if not attempts:
            return
        await conn.execute(
            """INSERT INTO webhook_attempts (delivery_id, http_status, latency_ms,
                    response_excerpt, error, correlation_id)
               SELECT a.*, d.correlation_id
               FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[], $5::text[])
                    AS a (delivery_id, http_status, latency_ms, response_excerpt, error)
               JOIN webhook_deliveries d ON d.id = a.delivery_id""",
            [delivery_id for delivery_id, _ in attempts],
            [a.http_status for _, a in attempts],
            [a.latency_ms for _, a in attempts],
            [a.response_excerpt for _, a in attempts],
            [a.error for _, a in attempts],
        )

    async def deliveries(
        self,
        conn: asyncpg.Connection,
        *,
        limit: int,
        starting_after: UUID | None = None,
        endpoint_id: UUID | None = None,
        event_type: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> tuple[list[Delivery], bool]:
        """Deliveries newest first, each with its attempts (oldest first)."""
        rows = await conn.fetch(
            """SELECT d.id, d.event_id, d.endpoint_id, d.event_type, d.status, d.attempts,
                      CASE WHEN d.status = 'pending' THEN d.next_attempt_at END
                          AS next_attempt_at,
                      d.last_error, d.created_at, d.completed_at,
                      coalesce((SELECT array_agg((a.attempted_at, a.http_status, a.latency_ms,
                                                  a.response_excerpt, a.error)
                                                 ORDER BY a.attempted_at)
                                FROM webhook_attempts a WHERE a.delivery_id = d.id),
                               '{}') AS attempt_log
               FROM webhook_deliveries d
               WHERE ($2::uuid IS NULL OR d.endpoint_id = $2)
                 AND ($3::text IS NULL OR d.event_type = $3)
                 AND ($4::text IS NULL OR d.status = $4)
                 AND ($5::uuid IS NULL OR (d.created_at, d.id) < (
                       SELECT created_at, id FROM webhook_deliveries WHERE id = $5))
               ORDER BY d.created_at DESC, d.id DESC LIMIT $1""",
            limit + 1,
            endpoint_id,
            event_type,
            status,
            starting_after,
        )
        return [_delivery(r) for r in rows[:limit]], len(rows) > limit

    async def clear_secrets(
        self, conn: asyncpg.Connection, *, limit: int
    ) -> dict[UUID, tuple[str, str | None]]:
        """Up to `limit` endpoints an earlier release left with secrets in clear (current,
        previous), locked for sealing (rows another sealer holds are skipped)."""
        rows = await conn.fetch(
            """SELECT id, secret, previous_secret FROM webhook_endpoints
               WHERE secret IS NOT NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""",
            limit,
        )
        return {r["id"]: (r["secret"], r["previous_secret"]) for r in rows}

    async def store_sealed_secrets(
        self,
        conn: asyncpg.Connection,
        *,
        endpoint_id: UUID,
        secret: bytes,
        previous_secret: bytes | None,
    ) -> None:
        """Replace an endpoint's clear secrets by their sealed forms."""
        await conn.execute(
            """UPDATE webhook_endpoints SET secret = NULL, previous_secret = NULL,
                      secret_sealed = $2, previous_secret_sealed = $3
               WHERE id = $1""",
            endpoint_id,
            secret,
            previous_secret,
        )

    async def validate_sealed_secrets(self, conn: asyncpg.Connection) -> None:
        """Validate `webhook_secrets_sealed` (migration 0022) if it is not yet."""
        validated = await conn.fetchval(
            "SELECT convalidated FROM pg_constraint WHERE conname = 'webhook_secrets_sealed'"
        )
        if not validated:
            await conn.execute(
                "ALTER TABLE webhook_endpoints VALIDATE CONSTRAINT webhook_secrets_sealed"
            )

    async def close_pending(
        self, conn: asyncpg.Connection, *, endpoint_id: UUID, reason: str
    ) -> int:
        """Fail every pending delivery to an endpoint that will never take them."""
        done = await conn.execute(
            """UPDATE webhook_deliveries SET status = 'failed', last_error = $2,
                   claimed_until = NULL, completed_at = now()
               WHERE endpoint_id = $1 AND status = 'pending'""",
            endpoint_id,
            reason,
        )
        return int(done.split()[-1])
