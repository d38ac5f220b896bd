"""SQL for AML alerts. Keyword-only methods; never commits: the caller owns the transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

import asyncpg

from engine.compliance.models import Alert
from engine.compliance.rules import COMPLIANCE_BLOCK, Attempt
from engine.db.listing import NEWEST_FIRST, ListQuery, split_page
from engine.events.outbox import Event
from schema.api.compliance import AlertQuery
from schema.states import AlertStatus, AmlRule, RuleAction

_COLUMNS = """id, rule, action, status, customer_id, payment_id, details, resolution_note,
    resolved_at, created_at"""


def _alert(row: asyncpg.Record) -> Alert:
    return Alert(
        id=row["id"],
        rule=AmlRule(row["rule"]),
        action=RuleAction(row["action"]),
        status=AlertStatus(row["status"]),
        customer_id=row["customer_id"],
        payment_id=row["payment_id"],
        details=row["details"],
        resolution_note=row["resolution_note"],
        resolved_at=row["resolved_at"],
        created_at=row["created_at"],
    )


class AlertRepository:
    async def insert_with_events(
        self,
        conn: asyncpg.Connection,
        *,
        alerts: list[Alert],
        events: list[Event],
        api_key_ids: list[UUID | None],
        correlation_ids: list[str | None],
    ) -> None:
        """Write alerts (`api_key_ids` and `correlation_ids` aligned with them) and events in
        ONE statement: a batch with hits pays one more round trip, whatever their number. The
        events part writes the rows `engine/events/outbox.py` writes."""
        await conn.execute(
            """WITH alerts AS (
                   INSERT INTO compliance_alerts (id, rule, action, status, customer_id,
                          payment_id, details, api_key_id, correlation_id, created_at)
                   SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],
                                        $5::uuid[], $6::uuid[], $7::jsonb[], $8::uuid[],
                                        $9::text[], $10::timestamptz[])
               )
               INSERT INTO events (event_type, object_type, object_id, payload, api_key_id,
                      correlation_id)
               SELECT * FROM unnest($11::text[], $12::text[], $13::uuid[], $14::jsonb[],
                                    $15::uuid[], $16::text[])""",
            [a.id for a in alerts],
            [a.rule.value for a in alerts],
            [a.action.value for a in alerts],
            [a.status.value for a in alerts],
            [a.customer_id for a in alerts],
            [a.payment_id for a in alerts],
            [a.details for a in alerts],
            api_key_ids,
            correlation_ids,
            [a.created_at for a in alerts],
            [e.type for e in events],
            [e.object_type for e in events],
            [e.object_id for e in events],
            [e.payload for e in events],
            [e.api_key_id for e in events],
            [e.correlation_id for e in events],
        )

    async def finished_attempts(
        self, conn: asyncpg.Connection, *, slots: list[int], since: datetime
    ) -> AsyncIterator[tuple[UUID, Attempt]]:
        """The finished purchases and authorizations of customers in `slots` created after
        `since`, oldest first, as the rules remember them: (customer id, attempt), with no card
        (nothing of it is stored that the rules could tell apart). Blocked payments are left
        out, as the live history leaves them out; rows still `processing` are remembered when
        recovery finishes them. Streamed through a cursor: the caller holds a transaction."""
        cursor = conn.cursor(
            """SELECT id, customer_id, amount, currency, created_at FROM transactions
               WHERE parent_id IS NULL AND slot = ANY($1::int[]) AND created_at > $2
                 AND transaction_type IN ('purchase', 'authorize')
                 AND status <> 'processing'
                 AND decline_code IS DISTINCT FROM $3
               ORDER BY created_at, id""",
            slots,
            since,
            COMPLIANCE_BLOCK,
            prefetch=5000,
        )
        async for r in cursor:
            yield (
                r["customer_id"],
                Attempt(r["id"], r["created_at"], r["amount"], r["currency"].strip(), None),
            )

    async def page(
        self, conn: asyncpg.Connection, *, query: AlertQuery
    ) -> tuple[list[Alert], bool]:
        """One page of alerts matching `query`, newest first, and whether more follow."""
        sql = ListQuery("compliance_alerts", "a")
        sql.where("a.rule = {}", query.rule)
        sql.where("a.status = {}", query.status)
        sql.where("a.customer_id = {}", query.customer_id)
        sql.after(NEWEST_FIRST, query.starting_after)
        rows = await conn.fetch(sql.page_sql(_COLUMNS, NEWEST_FIRST, query.limit), *sql.args)
        found, more = split_page(rows, query.limit)
        return [_alert(r) for r in found], more

    async def get(self, conn: asyncpg.Connection, *, alert_id: UUID) -> Alert | None:
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM compliance_alerts WHERE id = $1", alert_id
        )
        return None if row is None else _alert(row)

    async def resolve(
        self,
        conn: asyncpg.Connection,
        *,
        alert_id: UUID,
        note: str,
        resolved_by: UUID | None,
        at: datetime,
    ) -> Alert | None:
        """Resolve an open alert; None if there is no open alert with that id."""
        row = await conn.fetchrow(
            f"""UPDATE compliance_alerts SET status = 'resolved', resolution_note = $2,
                    resolved_by = $3, resolved_at = $4
                WHERE id = $1 AND status = 'open'
                RETURNING {_COLUMNS}""",
            alert_id,
            note,
            resolved_by,
            at,
        )
        return None if row is None else _alert(row)

    async def purge_resolved(
        self, conn: asyncpg.Connection, *, older_than_days: int, limit: int
    ) -> int:
        """Delete up to `limit` alerts resolved more than `older_than_days` days ago; open
        alerts stay whatever their age. Returns how many went."""
        done = await conn.execute(
            """DELETE FROM compliance_alerts WHERE id IN (
                   SELECT id FROM compliance_alerts
                   WHERE status = 'resolved'
                     AND resolved_at < now() - make_interval(days => $1)
                   LIMIT $2)""",
            older_than_days,
            limit,
        )
        return int(done.split()[-1])
