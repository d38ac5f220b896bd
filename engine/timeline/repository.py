"""SQL of a request's timeline. Never commits.

It starts from the audit rows carrying the correlation id (indexed since 0013): their entity
ids are the transactions, refunds and other audited rows the request wrote. From those, by
primary and foreign-key indexes only, it reaches the gateway calls made for the payments and
operations it created (a call's reference is the payment or operation it was for), the AML
alerts of their customers, the ledger entries, the events about any of these, the events'
webhook deliveries and their attempts, keeping each only if it carries the same correlation
id. No table needed a new index for this (see
migration 0024).
"""

from __future__ import annotations

import asyncpg

from engine.timeline.models import TimelineEntry

_TIMELINE = """
WITH audit AS (
    SELECT id, entity_type, entity_id, action, api_key_id, created_at
    FROM audit_logs WHERE correlation_id = $1
    ORDER BY created_at, id LIMIT $2
),
touched AS (
    SELECT entity_type, entity_id, min(created_at) AS first_at,
           bool_or(action = 'INSERT') AS created
    FROM audit GROUP BY entity_type, entity_id
),
moved AS (
    SELECT t.*, tt.first_at, tt.created
    FROM touched tt JOIN transactions t ON t.id = tt.entity_id
    WHERE tt.entity_type = 'transactions'
),
alerts AS (
    SELECT c.id, c.rule, c.action, c.status, c.payment_id, c.created_at
    FROM compliance_alerts c
    WHERE c.customer_id IN (SELECT customer_id FROM moved) AND c.correlation_id = $1
),
ev AS (
    SELECT e.id, e.event_type, e.object_type, e.object_id, e.created_at
    FROM events e
    WHERE e.object_id IN (SELECT entity_id FROM touched UNION ALL SELECT id FROM alerts)
      AND e.correlation_id = $1
),
dl AS (
    SELECT d.id, d.event_id, d.endpoint_id, d.status, d.attempts, d.created_at
    FROM webhook_deliveries d
    WHERE d.event_id IN (SELECT id FROM ev) AND d.correlation_id = $1
)
SELECT 'audit' AS kind, a.id::text AS id, a.created_at AS at,
       jsonb_build_object('entity_type', a.entity_type, 'entity_id', a.entity_id,
                          'action', a.action, 'api_key_id', a.api_key_id) AS detail
FROM audit a
UNION ALL
SELECT CASE WHEN m.parent_id IS NULL THEN 'payment' ELSE 'operation' END, m.id::text, m.first_at,
       jsonb_build_object('type', m.transaction_type, 'status', m.status, 'amount', m.amount,
                          'currency', m.currency, 'parent_id', m.parent_id,
                          'customer_id', m.customer_id, 'gateway', m.gateway,
                          'correlation_id', m.correlation_id)
FROM moved m
UNION ALL
SELECT 'compliance_alert', c.id::text, c.created_at,
       jsonb_build_object('rule', c.rule, 'action', c.action, 'status', c.status,
                          'payment_id', c.payment_id)
FROM alerts c
UNION ALL
SELECT 'refund', r.id::text, tt.first_at,
       jsonb_build_object('transaction_id', r.transaction_id, 'status', r.status,
                          'amount', r.amount, 'currency', r.currency, 'reason', r.reason,
                          'correlation_id', r.correlation_id)
FROM touched tt JOIN refunds r ON r.id = tt.entity_id
WHERE tt.entity_type = 'refunds'
UNION ALL
SELECT 'gateway_attempt', g.id::text, g.created_at,
       jsonb_build_object('payment_id', g.payment_id, 'gateway', g.gateway, 'kind', g.kind,
                          'outcome', g.outcome, 'latency_ms', g.latency_ms,
                          'decline_code', g.decline_code)
FROM gateway_attempts g
WHERE g.payment_id IN (SELECT id FROM moved)
  AND g.reference IN (SELECT id FROM moved WHERE created)
UNION ALL
SELECT 'ledger_entry', l.id::text, l.created_at,
       jsonb_build_object('transaction_id', l.transaction_id, 'customer_id', l.customer_id,
                          'account', l.account, 'amount', l.amount, 'currency', l.currency)
FROM ledger_entries l
WHERE l.transaction_id IN (SELECT id FROM moved) AND l.correlation_id = $1
UNION ALL
SELECT 'event', e.id::text, e.created_at,
       jsonb_build_object('event_type', e.event_type, 'object_type', e.object_type,
                          'object_id', e.object_id)
FROM ev e
UNION ALL
SELECT 'webhook_delivery', d.id::text, d.created_at,
       jsonb_build_object('event_id', d.event_id, 'endpoint_id', d.endpoint_id,
                          'status', d.status, 'attempts', d.attempts)
FROM dl d
UNION ALL
SELECT 'webhook_attempt', w.id::text, w.attempted_at,
       jsonb_build_object('delivery_id', w.delivery_id, 'http_status', w.http_status,
                          'latency_ms', w.latency_ms, 'error', w.error)
FROM webhook_attempts w
WHERE w.delivery_id IN (SELECT id FROM dl) AND w.correlation_id = $1
"""


class TimelineRepository:
    async def entries(
        self, conn: asyncpg.Connection, *, correlation_id: str, audit_limit: int
    ) -> tuple[list[TimelineEntry], bool]:
        """The rows carrying `correlation_id` (unordered), from at most `audit_limit` audit
        rows and what they lead to; and whether the audit rows were cut at the limit."""
        rows = await conn.fetch(_TIMELINE, correlation_id, audit_limit + 1)
        audits = sum(1 for r in rows if r["kind"] == "audit")
        entries = [TimelineEntry(r["kind"], r["id"], r["at"], r["detail"]) for r in rows]
        return entries, audits > audit_limit
