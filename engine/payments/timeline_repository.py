"""SQL for a payment's timeline: every row paygrid holds about one payment and its operations
(captures, voids, refunds), each mapped to a `TimelineEntry`. Keyword-only methods; never
commits. Each query is by indexed id (`transactions.parent_id`, `gateway_attempts.payment_id`,
`ledger_entries.transaction_id`, `events.object_id`, `webhook_deliveries (event_id, …)`,
`audit_logs (entity_type, entity_id)`), so a timeline costs a handful of index scans.

What an entry shows is chosen here: amounts, states, codes, ids and latencies; never a profile,
a card beyond what the payment summary holds (brand, last4), or a response body."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson

from engine.money import Money
from engine.payments.timeline_models import TimelineEntry, TimelineSource

# Audit rows list the fields a change touched; these are the ones whose values are shown.
_SHOWN_VALUES = ("status", "amount_captured", "amount_refunded", "amount_capturable")


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format()


class TimelineRepository:
    async def operations(
        self, conn: asyncpg.Connection, *, payment_id: UUID
    ) -> tuple[list[UUID], list[TimelineEntry]]:
        """The ids of the payment and its operations (the payment's first; empty when there
        is no such payment), and the request behind each but refunds (which the refund
        entries show)."""
        rows = await conn.fetch(
            """SELECT id, transaction_type::text AS transaction_type, status::text AS status,
                      amount, currency, api_key_id, correlation_id, created_at
               FROM transactions
               WHERE id = $1 OR (parent_id = $1 AND parent_id IS NOT NULL)
               ORDER BY id <> $1, created_at, id""",
            payment_id,
        )
        if not rows or rows[0]["id"] != payment_id:
            return [], []
        requests = [
            TimelineEntry(
                at=r["created_at"],
                source=TimelineSource.REQUEST,
                title=f"{r['transaction_type']} requested",
                facts=(
                    ("amount", _money(r["amount"], r["currency"])),
                    ("outcome", r["status"]),
                    ("api key", str(r["api_key_id"]) if r["api_key_id"] else "—"),
                ),
                correlation_id=r["correlation_id"],
            )
            for r in rows
            if r["transaction_type"] != "refund"
        ]
        return [r["id"] for r in rows], requests

    async def refunds(self, conn: asyncpg.Connection, *, payment_id: UUID) -> list[TimelineEntry]:
        rows = await conn.fetch(
            """SELECT id, amount, currency, reason, status::text AS status, correlation_id,
                      created_at
               FROM refunds WHERE transaction_id = $1""",
            payment_id,
        )
        return [
            TimelineEntry(
                at=r["created_at"],
                source=TimelineSource.REFUND,
                title=f"refund {r['status']}",
                facts=(
                    ("amount", _money(r["amount"], r["currency"])),
                    ("reason", r["reason"] or "—"),
                    ("refund", str(r["id"])),
                ),
                correlation_id=r["correlation_id"],
            )
            for r in rows
        ]

    async def gateway_attempts(
        self, conn: asyncpg.Connection, *, payment_id: UUID
    ) -> list[TimelineEntry]:
        rows = await conn.fetch(
            """SELECT gateway, kind, outcome, latency_ms, gateway_transaction_id, decline_code,
                      created_at
               FROM gateway_attempts WHERE payment_id = $1 ORDER BY id""",
            payment_id,
        )
        return [
            TimelineEntry(
                at=r["created_at"],
                source=TimelineSource.GATEWAY,
                title=f"gateway {r['kind']}: {r['outcome']}",
                facts=_facts(
                    ("gateway", r["gateway"]),
                    ("latency", f"{r['latency_ms']} ms"),
                    ("decline code", r["decline_code"]),
                    ("gateway id", r["gateway_transaction_id"]),
                ),
            )
            for r in rows
        ]

    async def ledger_entries(
        self, conn: asyncpg.Connection, *, transaction_ids: list[UUID]
    ) -> list[TimelineEntry]:
        rows = await conn.fetch(
            """SELECT account, amount, currency, created_at FROM ledger_entries
               WHERE transaction_id = ANY($1::uuid[])""",
            transaction_ids,
        )
        return [
            TimelineEntry(
                at=r["created_at"],
                source=TimelineSource.LEDGER,
                title=f"ledger: {r['account']}",
                facts=(("amount", _money(r["amount"], r["currency"])),),
            )
            for r in rows
        ]

    async def events(
        self, conn: asyncpg.Connection, *, object_ids: list[UUID]
    ) -> list[TimelineEntry]:
        rows = await conn.fetch(
            """SELECT id, event_type, correlation_id, created_at FROM events
               WHERE object_id = ANY($1::uuid[])""",
            object_ids,
        )
        return [
            TimelineEntry(
                at=r["created_at"],
                source=TimelineSource.EVENT,
                title=f"event {r['event_type']}",
                facts=(("event", str(r["id"])),),
                correlation_id=r["correlation_id"],
            )
            for r in rows
        ]

    async def webhook_attempts(
        self, conn: asyncpg.Connection, *, object_ids: list[UUID]
    ) -> list[TimelineEntry]:
        rows = await conn.fetch(
            """SELECT d.id AS delivery_id, d.endpoint_id, d.event_type, a.http_status,
                      a.latency_ms, a.error, a.attempted_at
               FROM events e
               JOIN webhook_deliveries d ON d.event_id = e.id
               JOIN webhook_attempts a ON a.delivery_id = d.id
               WHERE e.object_id = ANY($1::uuid[])""",
            object_ids,
        )
        return [
            TimelineEntry(
                at=r["attempted_at"],
                source=TimelineSource.WEBHOOK,
                title=f"webhook {r['event_type']} → {_answer(r['http_status'])}",
                facts=_facts(
                    ("answer", _answer(r["http_status"])),
                    ("latency", f"{r['latency_ms']} ms"),
                    ("endpoint", str(r["endpoint_id"])),
                    ("delivery", str(r["delivery_id"])),
                    ("error", r["error"]),
                ),
            )
            for r in rows
        ]

    async def audit_rows(
        self, conn: asyncpg.Connection, *, entity_ids: list[UUID]
    ) -> list[TimelineEntry]:
        rows = await conn.fetch(
            """SELECT entity_type, entity_id, action, old_values, new_values, api_key_id,
                      correlation_id, created_at
               FROM audit_logs
               WHERE entity_type IN ('transactions', 'refunds')
                 AND entity_id = ANY($1::uuid[])""",
            entity_ids,
        )
        return [
            TimelineEntry(
                at=r["created_at"],
                source=TimelineSource.AUDIT,
                title=f"audit {r['action'].lower()} {r['entity_type']}",
                facts=_changes(r["old_values"], r["new_values"]),
                correlation_id=r["correlation_id"],
            )
            for r in rows
        ]


def _facts(*pairs: tuple[str, str | None]) -> tuple[tuple[str, str], ...]:
    """The (label, value) pairs that have a value."""
    return tuple((label, value) for label, value in pairs if value)


def _answer(http_status: int | None) -> str:
    return "no answer" if http_status is None else str(http_status)


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    loaded = orjson.loads(value) if isinstance(value, str | bytes) else value
    return loaded if isinstance(loaded, dict) else {}


def _changes(old: Any, new: Any) -> tuple[tuple[str, str], ...]:
    """The fields a change touched, by name; the values of a few (states and amounts) too."""
    before, after = _json(old), _json(new)
    changed = sorted(k for k in after.keys() | before.keys() if after.get(k) != before.get(k))
    changed = [k for k in changed if k != "updated_at"]
    facts = [
        (k, f"{before[k]} → {after[k]}" if k in before else str(after[k]))
        for k in changed
        if k in _SHOWN_VALUES and k in after
    ]
    rest = [k for k in changed if k not in _SHOWN_VALUES]
    if rest:
        facts.append(("fields", ", ".join(rest)))
    return tuple(facts)
