"""SQL of webhook endpoints, deliveries, attempts and queue switches. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from engine.principal import Principal

_ENDPOINT_COLUMNS = """id, url, description, enabled_events, status, disabled_reason, secret,
    previous_secret, previous_secret_until, failing_since, metadata, created_at, updated_at"""


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: UUID
    url: str
    description: str | None
    enabled_events: list[str]
    status: str
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    previous_secret_until: datetime | None
    failing_since: datetime | None
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, and the previous one while its grace period lasts."""
        live = [self.secret]
        if self.previous_secret and self.previous_secret_until and self.previous_secret_until > now:
            live.append(self.previous_secret)
        return live


def _endpoint(r: asyncpg.Record) -> Endpoint:
    return Endpoint(
        r["id"],
        r["url"],
        r["description"],
        list(r["enabled_events"]),
        r["status"],
        r["disabled_reason"],
        r["secret"],
        r["previous_secret"],
        r["previous_secret_until"],
        r["failing_since"],
        r["metadata"],
        r["created_at"],
        r["updated_at"],
    )


# Completes a statement whose CTE `claimed` returns (id, attempts, event_id, endpoint_id).
_CLAIMED_SELECT = f"""
    SELECT c.id AS delivery_id, c.attempts, ev.id AS event_id, ev.event_type,
           ev.created_at AS event_created, ev.payload, ev.correlation_id,
           {", ".join("e." + c.strip() for c in _ENDPOINT_COLUMNS.split(","))}
    FROM claimed c
    JOIN events ev ON ev.id = c.event_id
    JOIN webhook_endpoints e ON e.id = c.endpoint_id"""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery taken by one dispatcher, with what it needs to send it."""

    id: UUID
    attempts: int
    event_id: UUID
    event_type: str
    event_created: datetime
    payload: dict[str, Any]
    correlation_id: str | None
    endpoint: Endpoint


def _claimed(r: asyncpg.Record) -> Claimed:
    return Claimed(
        r["delivery_id"],
        r["attempts"],
        r["event_id"],
        r["event_type"],
        r["event_created"],
        r["payload"],
        r["correlation_id"],
        _endpoint(r),
    )


class WebhookRepository:
    async def insert_endpoint(
        self,
        conn: asyncpg.Connection,
        *,
        url: str,
        enabled_events: list[str],
        description: str | None,
        metadata: dict[str, str],
        secret: str,
        principal: Principal,
    ) -> Endpoint:
        row = await conn.fetchrow(
            f"""INSERT INTO webhook_endpoints (url, enabled_events, description, metadata, secret,
                    api_key_id, correlation_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_ENDPOINT_COLUMNS}""",
            url,
            enabled_events,
            description,
            metadata,
            secret,
            principal.api_key_id,
            principal.correlation_id,
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
        allowed = {
            "url",
            "enabled_events",
            "description",
            "metadata",
            "status",
            "disabled_reason",
            "secret",
            "previous_secret",
            "previous_secret_until",
            "failing_since",
        }
        if not set(changes) <= allowed:
            raise ValueError(f"cannot change {sorted(set(changes) - allowed)}")
        names = list(changes)
        sets = ", ".join(f"{name} = ${i + 4}" for i, name in enumerate(names))
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

    async def claim(
        self,
        conn: asyncpg.Connection,
        *,
        limit: int,
        lease_s: float,
        per_endpoint: int,
        in_flight: dict[UUID, int],
    ) -> list[Claimed]:
        """Take up to `limit` due deliveries, never more per enabled endpoint than its room
        (`per_endpoint` less what the caller already has `in_flight` to it), so one slow
        receiver never fills the dispatcher. Nothing while the queue is paused. Claims are
        leases of `lease_s`: a dispatcher that dies mid-delivery leaves its lease to run out,
        and another takes the delivery."""
        rows = await conn.fetch(
            f"""WITH busy AS (
                    SELECT * FROM unnest($4::uuid[], $5::int[]) AS b(endpoint_id, in_flight)),
                due AS (
                    SELECT d.id FROM webhook_endpoints e
                    LEFT JOIN busy b ON b.endpoint_id = e.id
                    CROSS JOIN LATERAL (
                        SELECT d.id FROM webhook_deliveries d
                        WHERE d.endpoint_id = e.id AND d.status = 'pending'
                          AND d.next_attempt_at <= now()
                          AND (d.claimed_until IS NULL OR d.claimed_until < now())
                        ORDER BY d.next_attempt_at
                        LIMIT greatest(0, $3 - coalesce(b.in_flight, 0))
                        FOR UPDATE SKIP LOCKED) d
                    WHERE e.status = 'enabled'
                      AND NOT (SELECT paused FROM queue_state WHERE queue = 'webhooks')
                    LIMIT $1),
                claimed AS (
                    UPDATE webhook_deliveries d
                    SET claimed_until = now() + make_interval(secs => $2),
                        attempts = d.attempts + 1
                    FROM due WHERE d.id = due.id
                    RETURNING d.id, d.attempts, d.event_id, d.endpoint_id)
                {_CLAIMED_SELECT}""",
            limit,
            lease_s,
            per_endpoint,
            list(in_flight),
            list(in_flight.values()),
        )
        return [_claimed(r) for r in rows]

    async def delivered(
        self,
        conn: asyncpg.Connection,
        *,
        delivery_id: UUID,
        http_status: int,
        latency_ms: int,
        response_excerpt: str | None,
    ) -> None:
        """Record a successful attempt and close its delivery, in one statement (the hot path
        needs no explicit transaction)."""
        await conn.execute(
            """WITH attempt AS (
                   INSERT INTO webhook_attempts (delivery_id, http_status, latency_ms,
                        response_excerpt)
                   VALUES ($1, $2, $3, $4))
               UPDATE webhook_deliveries SET status = 'succeeded', last_error = NULL,
                   claimed_until = NULL, completed_at = now()
               WHERE id = $1""",
            delivery_id,
            http_status,
            latency_ms,
            response_excerpt,
        )

    async def claim_for_endpoint(
        self, conn: asyncpg.Connection, *, endpoint_id: UUID, event_type: str, lease_s: float
    ) -> list[Claimed]:
        """Claim the newest pending delivery of `event_type` to one endpoint (the caller just
        created it in this transaction)."""
        rows = await conn.fetch(
            f"""WITH claimed AS (
                    UPDATE webhook_deliveries d
                    SET claimed_until = now() + make_interval(secs => $3), attempts = attempts + 1
                    WHERE d.id = (SELECT id FROM webhook_deliveries
                                  WHERE endpoint_id = $1 AND event_type = $2
                                    AND status = 'pending' AND claimed_until IS NULL
                                  ORDER BY created_at DESC LIMIT 1)
                    RETURNING d.id, d.attempts, d.event_id, d.endpoint_id)
                {_CLAIMED_SELECT}""",
            endpoint_id,
            event_type,
            lease_s,
        )
        return [_claimed(r) for r in rows]

    async def record_attempt(
        self,
        conn: asyncpg.Connection,
        *,
        delivery_id: UUID,
        http_status: int | None,
        latency_ms: int,
        response_excerpt: str | None,
        error: str | None,
    ) -> None:
        await conn.execute(
            """INSERT INTO webhook_attempts (delivery_id, http_status, latency_ms,
                    response_excerpt, error)
               VALUES ($1, $2, $3, $4, $5)""",
            delivery_id,
            http_status,
            latency_ms,
            response_excerpt,
            error,
        )

    async def settle(
        self,
        conn: asyncpg.Connection,
        *,
        delivery_id: UUID,
        status: str,
        retry_in_s: float | None,
        error: str | None,
    ) -> None:
        """Close a delivery (succeeded, failed, dead) or put it back for a retry."""
        await conn.execute(
            """UPDATE webhook_deliveries SET
                   status = $2, last_error = $4, claimed_until = NULL,
                   next_attempt_at = CASE WHEN $3::float8 IS NULL THEN next_attempt_at
                                          ELSE now() + make_interval(secs => $3) END,
                   completed_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END
               WHERE id = $1""",
            delivery_id,
            status,
            retry_in_s,
            error,
        )

    async def requeue(
        self,
        conn: asyncpg.Connection,
        *,
        delivery_id: UUID | None = None,
        endpoint_id: UUID | None = None,
        status: str = "dead",
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Put finished deliveries back in the queue for another round of attempts (only to
        enabled endpoints: nothing would ever take the others)."""
        done = await conn.execute(
            """UPDATE webhook_deliveries SET status = 'pending', attempts = 0,
                   next_attempt_at = now(), claimed_until = NULL, completed_at = NULL
               WHERE status = $3 AND ($1::uuid IS NULL OR id = $1)
                 AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE status = 'enabled')
                 AND ($2::uuid IS NULL OR endpoint_id = $2)
                 AND ($4::timestamptz IS NULL OR created_at >= $4)
                 AND ($5::timestamptz IS NULL OR created_at < $5)""",
            delivery_id,
            endpoint_id,
            status,
            since,
            until,
        )
        count = int(done.split()[-1])
        if count:
            # Replays are due now: wake the dispatchers when this transaction commits.
            await conn.execute("SELECT pg_notify('paygrid_webhook_deliveries', '')")
        return count

    async def deliveries(
        self,
        conn: asyncpg.Connection,
        *,
        limit: int,
        starting_after: UUID | None = None,
        endpoint_id: UUID | None = None,
        event_type: str | None = None,
        status: str | None = None,
        delivery_id: UUID | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Deliveries newest first, each with its attempts (`attempt_log`, oldest first)."""
        rows = await conn.fetch(
            """SELECT d.id, d.event_id, d.endpoint_id, d.event_type, d.status, d.attempts,
                      CASE WHEN d.status = 'pending' THEN d.next_attempt_at END
                          AS next_attempt_at,
                      d.last_error, d.created_at, d.completed_at,
                      coalesce((SELECT jsonb_agg(jsonb_build_object(
                                    'attempted_at', a.attempted_at,
                                    'http_status', a.http_status,
                                    'latency_ms', a.latency_ms,
                                    'response_excerpt', a.response_excerpt,
                                    'error', a.error) ORDER BY a.attempted_at)
                                FROM webhook_attempts a WHERE a.delivery_id = d.id),
                               '[]'::jsonb) AS attempt_log
               FROM webhook_deliveries d
               WHERE ($2::uuid IS NULL OR d.endpoint_id = $2)
                 AND ($3::text IS NULL OR d.event_type = $3)
                 AND ($4::text IS NULL OR d.status = $4)
                 AND ($5::uuid IS NULL OR d.id = $5)
                 AND ($6::uuid IS NULL OR (d.created_at, d.id) < (
                       SELECT created_at, id FROM webhook_deliveries WHERE id = $6))
               ORDER BY d.created_at DESC, d.id DESC LIMIT $1""",
            limit + 1,
            endpoint_id,
            event_type,
            status,
            delivery_id,
            starting_after,
        )
        return [dict(r) for r in rows[:limit]], len(rows) > limit

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

    async def set_paused(self, conn: asyncpg.Connection, *, queue: str, paused: bool) -> None:
        await conn.execute(
            "UPDATE queue_state SET paused = $2, updated_at = now() WHERE queue = $1",
            queue,
            paused,
        )
