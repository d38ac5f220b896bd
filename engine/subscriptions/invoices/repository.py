"""SQL of `invoices` (migration 0009). Never commits.

An invoice's attempts are numbered: `begin_attempt` marks the next one pending and
`settle_attempt` settles only the attempt still pending, so two schedulers racing over one
invoice settle it once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from engine.principal import Principal
from engine.subscriptions.models import Invoice, InvoiceLine, NewInvoice
from engine.subscriptions.states import BillingReason, InvoiceStatus

_INVOICE_COLUMNS = """id, subscription_id, customer_id, billing_reason, status, currency,
    amount_due, amount_paid, period_start, period_end, lines, attempts, attempt_pending,
    next_attempt_at, last_decline_code, payment_ids, paid_at, created_at, refund_plan,
    applies"""
# The same, of `invoices i` in a join.
_INVOICE_COLUMNS_OF_I = ", ".join(f"i.{c.strip()}" for c in _INVOICE_COLUMNS.split(","))


@dataclass(frozen=True, slots=True)
class PaidAttempt:
    """A pending attempt that paid: settled by `settle_paid`."""

    invoice_id: UUID
    attempt: int
    payment_id: UUID
    paid_at: datetime


def _invoice(row: asyncpg.Record) -> Invoice:
    return Invoice(
        id=row["id"],
        subscription_id=row["subscription_id"],
        customer_id=row["customer_id"],
        billing_reason=BillingReason(row["billing_reason"]),
        status=InvoiceStatus(row["status"]),
        currency=row["currency"].strip(),
        amount_due=row["amount_due"],
        amount_paid=row["amount_paid"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        lines=[InvoiceLine.from_stored(line) for line in row["lines"]],
        attempts=row["attempts"],
        attempt_pending=row["attempt_pending"],
        next_attempt_at=row["next_attempt_at"],
        last_decline_code=row["last_decline_code"],
        payment_ids=list(row["payment_ids"]),
        paid_at=row["paid_at"],
        created_at=row["created_at"],
        refund_plan=[(UUID(r["payment_id"]), r["amount"]) for r in row["refund_plan"]],
        applies=row["applies"],
    )


class InvoiceRepository:
    async def insert(
        self, conn: asyncpg.Connection, *, invoice: NewInvoice, principal: Principal
    ) -> Invoice | None:
        """The new invoice; None when its period is already invoiced."""
        row = await conn.fetchrow(
            f"""INSERT INTO invoices (id, subscription_id, customer_id, billing_reason, currency,
                    amount_due, period_start, period_end, lines, next_attempt_at, api_key_id,
                    correlation_id, refund_plan, applies)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                ON CONFLICT DO NOTHING
                RETURNING {_INVOICE_COLUMNS}""",
            invoice.id,
            invoice.subscription_id,
            invoice.customer_id,
            invoice.billing_reason,
            invoice.currency,
            invoice.amount_due,
            invoice.period_start,
            invoice.period_end,
            [line.stored() for line in invoice.lines],
            invoice.next_attempt_at,
            principal.api_key_id,
            principal.correlation_id,
            [{"payment_id": str(p), "amount": a} for p, a in invoice.refund_plan],
            invoice.applies,
        )
        return None if row is None else _invoice(row)

    async def get(
        self, conn: asyncpg.Connection, *, invoice_id: UUID, for_update: bool = False
    ) -> Invoice | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await conn.fetchrow(
            f"SELECT {_INVOICE_COLUMNS} FROM invoices WHERE id = $1{lock}", invoice_id
        )
        return None if row is None else _invoice(row)

    async def subscription_of(self, conn: asyncpg.Connection, *, invoice_id: UUID) -> UUID | None:
        found: UUID | None = await conn.fetchval(
            "SELECT subscription_id FROM invoices WHERE id = $1", invoice_id
        )
        return found

    async def close(
        self,
        conn: asyncpg.Connection,
        *,
        invoice_id: UUID,
        status: InvoiceStatus,
        principal: Principal,
    ) -> Invoice | None:
        """Close (void or uncollectible) one open invoice with no attempt in flight."""
        row = await conn.fetchrow(
            f"""UPDATE invoices SET status = $2, next_attempt_at = NULL, updated_at = now(),
                    api_key_id = $3, correlation_id = $4
                WHERE id = $1 AND status = 'open' AND NOT attempt_pending
                RETURNING {_INVOICE_COLUMNS}""",
            invoice_id,
            status,
            principal.api_key_id,
            principal.correlation_id,
        )
        return None if row is None else _invoice(row)

    async def pending_unattended(
        self, conn: asyncpg.Connection, *, clock_id: UUID | None, limit: int
    ) -> list[UUID]:
        """Open invoices with an attempt pending whose subscription no run will look at
        again (paused, cancelled or failed): each must still be settled from its payment."""
        rows = await conn.fetch(
            """SELECT i.id FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id
               WHERE i.status = 'open' AND (i.attempt_pending OR i.amount_due < 0)
                 AND s.status IN ('paused', 'cancelled', 'failed')
                 AND s.test_clock_id IS NOT DISTINCT FROM $1
               ORDER BY i.created_at, i.id LIMIT $2""",
            clock_id,
            limit,
        )
        return [r["id"] for r in rows]

    async def period_paid(
        self, conn: asyncpg.Connection, *, subscription_id: UUID, period_start: datetime
    ) -> bool:
        """Whether the invoice of the period starting at `period_start` is paid."""
        return bool(
            await conn.fetchval(
                """SELECT EXISTS (SELECT 1 FROM invoices
                       WHERE subscription_id = $1 AND period_start = $2 AND status = 'paid'
                         AND billing_reason IN ('subscription_create', 'subscription_cycle'))""",
                subscription_id,
                period_start,
            )
        )

    async def next_attempt(
        self, conn: asyncpg.Connection, *, subscription_id: UUID
    ) -> datetime | None:
        """The soonest retry of the subscription's open charges (None: none is open with
        one to come)."""
        found: datetime | None = await conn.fetchval(
            """SELECT min(next_attempt_at) FROM invoices
               WHERE subscription_id = $1 AND status = 'open' AND amount_due > 0""",
            subscription_id,
        )
        return found

    async def payable_of(
        self, conn: asyncpg.Connection, *, subscription_id: UUID, now: datetime
    ) -> UUID | None:
        """The subscription's oldest open invoice with an attempt pending or due by `now`."""
        found: UUID | None = await conn.fetchval(
            """SELECT id FROM invoices
               WHERE subscription_id = $1 AND status = 'open' AND amount_due > 0
                 AND (attempt_pending OR next_attempt_at <= $2)
               ORDER BY created_at, id LIMIT 1""",
            subscription_id,
            now,
        )
        return found

    async def latest(
        self, conn: asyncpg.Connection, *, subscription_ids: Sequence[UUID]
    ) -> dict[UUID, Invoice]:
        rows = await conn.fetch(
            f"""SELECT DISTINCT ON (subscription_id) {_INVOICE_COLUMNS} FROM invoices
                WHERE subscription_id = ANY($1::uuid[])
                ORDER BY subscription_id, created_at DESC, id DESC""",
            list(subscription_ids),
        )
        return {r["subscription_id"]: _invoice(r) for r in rows}

    async def page(
        self,
        conn: asyncpg.Connection,
        *,
        subscription_id: UUID,
        limit: int,
        starting_after: UUID | None,
    ) -> tuple[list[Invoice], bool]:
        """The subscription's invoices, newest first, and whether more follow."""
        rows = await conn.fetch(
            f"""SELECT {_INVOICE_COLUMNS} FROM invoices
                WHERE subscription_id = $1
                  AND ($3::uuid IS NULL OR (created_at, id) < (
                        SELECT created_at, id FROM invoices WHERE id = $3))
                ORDER BY created_at DESC, id DESC LIMIT $2""",
            subscription_id,
            limit + 1,
            starting_after,
        )
        return [_invoice(r) for r in rows[:limit]], len(rows) > limit

    async def begin_attempt(
        self, conn: asyncpg.Connection, *, invoice_id: UUID, principal: Principal
    ) -> Invoice | None:
        """Number the next attempt and mark it pending; None unless the invoice is open with
        no attempt pending."""
        row = await conn.fetchrow(
            f"""UPDATE invoices SET attempts = attempts + 1, attempt_pending = true,
                    updated_at = now(), api_key_id = $2, correlation_id = $3
                WHERE id = $1 AND status = 'open' AND NOT attempt_pending
                RETURNING {_INVOICE_COLUMNS}""",
            invoice_id,
            principal.api_key_id,
            principal.correlation_id,
        )
        return None if row is None else _invoice(row)

    async def settle_attempt(
        self,
        conn: asyncpg.Connection,
        *,
        invoice_id: UUID,
        attempt: int,
        status: InvoiceStatus,
        payment_ids: list[UUID],
        paid_at: datetime | None,
        decline_code: str | None,
        next_attempt_at: datetime | None,
        principal: Principal,
    ) -> Invoice | None:
        """Settle pending attempt `attempt`; None if it is not the pending one (another
        scheduler settled it first)."""
        row = await conn.fetchrow(
            f"""UPDATE invoices SET status = $3, attempt_pending = false,
                    payment_ids = payment_ids || $4::uuid[],
                    amount_paid = CASE WHEN $3 = 'paid' THEN amount_due ELSE 0 END,
                    paid_at = $5, last_decline_code = $6, next_attempt_at = $7,
                    updated_at = now(), api_key_id = $8, correlation_id = $9
                WHERE id = $1 AND attempts = $2 AND attempt_pending
                RETURNING {_INVOICE_COLUMNS}""",
            invoice_id,
            attempt,
            status,
            payment_ids,
            paid_at,
            decline_code,
            next_attempt_at,
            principal.api_key_id,
            principal.correlation_id,
        )
        return None if row is None else _invoice(row)

    async def period_paid_net(
        self, conn: asyncpg.Connection, *, subscription_id: UUID, period_end: datetime
    ) -> int:
        """What was paid for the period ending at `period_end`: its invoice and the charges
        of its changes, less the credits paid back."""
        total = await conn.fetchval(
            """SELECT coalesce(sum(amount_paid), 0) FROM invoices
               WHERE subscription_id = $1 AND period_end = $2 AND status = 'paid'""",
            subscription_id,
            period_end,
        )
        return int(total)

    async def has_open(self, conn: asyncpg.Connection, *, subscription_id: UUID) -> bool:
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM invoices WHERE subscription_id = $1"
                " AND status = 'open')",
                subscription_id,
            )
        )

    async def refundable_payments(
        self, conn: asyncpg.Connection, *, subscription_id: UUID, period_end: datetime
    ) -> list[tuple[UUID, int]]:
        """The payments that paid the period ending at `period_end` (its invoice, then its
        changes' charges, oldest first) with what each can still refund."""
        rows = await conn.fetch(
            """SELECT t.id, t.amount_captured - t.amount_refunded - t.amount_refund_pending
                      AS refundable
               FROM invoices i
               JOIN transactions t ON t.id = i.payment_ids[cardinality(i.payment_ids)]
               WHERE i.subscription_id = $1 AND i.period_end = $2 AND i.status = 'paid'
                 AND i.amount_due > 0
               ORDER BY i.paid_at, i.created_at""",
            subscription_id,
            period_end,
        )
        return [(r["id"], int(r["refundable"])) for r in rows if r["refundable"] > 0]

    async def credits_of(self, conn: asyncpg.Connection, *, subscription_id: UUID) -> list[UUID]:
        """The subscription's open credit invoices (to pay back)."""
        rows = await conn.fetch(
            """SELECT id FROM invoices
               WHERE subscription_id = $1 AND status = 'open' AND amount_due < 0
               ORDER BY created_at, id""",
            subscription_id,
        )
        return [r["id"] for r in rows]

    async def retry_now(
        self,
        conn: asyncpg.Connection,
        *,
        subscription_id: UUID,
        now: datetime,
        principal: Principal,
    ) -> UUID | None:
        """Make the subscription's oldest open invoice due at `now` (a new payment method
        retries it at once); its id, or None when none is open."""
        found: UUID | None = await conn.fetchval(
            """UPDATE invoices SET next_attempt_at = $2, updated_at = now(),
                   api_key_id = $3, correlation_id = $4
               WHERE id = (SELECT id FROM invoices
                           WHERE subscription_id = $1 AND status = 'open' AND amount_due > 0
                           ORDER BY created_at, id LIMIT 1)
               RETURNING id""",
            subscription_id,
            now,
            principal.api_key_id,
            principal.correlation_id,
        )
        return found

    async def close_open(
        self,
        conn: asyncpg.Connection,
        *,
        subscription_id: UUID,
        status: InvoiceStatus,
        principal: Principal,
    ) -> list[Invoice]:
        """Close (void or uncollectible) the subscription's open charges with no attempt
        in flight (credits owed stay open, to be paid back); returns them."""
        rows = await conn.fetch(
            f"""UPDATE invoices SET status = $2, next_attempt_at = NULL, updated_at = now(),
                    api_key_id = $3, correlation_id = $4
                WHERE subscription_id = $1 AND status = 'open' AND NOT attempt_pending
                  AND amount_due > 0
                RETURNING {_INVOICE_COLUMNS}""",
            subscription_id,
            status,
            principal.api_key_id,
            principal.correlation_id,
        )
        return [_invoice(r) for r in rows]

    async def insert_begun(
        self, conn: asyncpg.Connection, *, invoices: Sequence[NewInvoice], principal: Principal
    ) -> list[Invoice]:
        """Insert period invoices with their first attempt already numbered and pending, in
        one statement (creating and beginning in one transaction: a run cut short finds the
        attempt pending and charges under its key); those whose period is already invoiced
        are left out."""
        rows = await conn.fetch(
            f"""INSERT INTO invoices (id, subscription_id, customer_id, billing_reason, currency,
                    amount_due, period_start, period_end, lines, next_attempt_at, api_key_id,
                    correlation_id, attempts, attempt_pending)
                SELECT u.id, u.subscription_id, u.customer_id, u.billing_reason, u.currency,
                       u.amount_due, u.period_start, u.period_end, u.lines::jsonb,
                       u.next_attempt_at, $11::uuid, $12::text, 1, true
                FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                            $6::bigint[], $7::timestamptz[], $8::timestamptz[], $9::text[],
                            $10::timestamptz[])
                     AS u(id, subscription_id, customer_id, billing_reason, currency, amount_due,
                          period_start, period_end, lines, next_attempt_at)
                ON CONFLICT DO NOTHING
                RETURNING {_INVOICE_COLUMNS}""",
            [i.id for i in invoices],
            [i.subscription_id for i in invoices],
            [i.customer_id for i in invoices],
            [i.billing_reason for i in invoices],
            [i.currency for i in invoices],
            [i.amount_due for i in invoices],
            [i.period_start for i in invoices],
            [i.period_end for i in invoices],
            # As JSON text: a list of lists would bind as a two-dimensional jsonb array.
            [json.dumps([line.stored() for line in i.lines]) for i in invoices],
            [i.next_attempt_at for i in invoices],
            principal.api_key_id,
            principal.correlation_id,
        )
        return [_invoice(r) for r in rows]

    async def with_open(
        self, conn: asyncpg.Connection, *, subscription_ids: Sequence[UUID]
    ) -> set[UUID]:
        """Which of the subscriptions have an open invoice (a charge or a credit)."""
        rows = await conn.fetch(
            """SELECT DISTINCT subscription_id FROM invoices
               WHERE subscription_id = ANY($1::uuid[]) AND status = 'open'""",
            list(subscription_ids),
        )
        return {r["subscription_id"] for r in rows}

    async def settle_paid(
        self,
        conn: asyncpg.Connection,
        *,
        paid: Sequence[PaidAttempt],
        principal: Principal,
    ) -> list[Invoice]:
        """Settle each pending attempt as paid, in one statement; those no longer pending
        (another scheduler settled them first) are left out."""
        rows = await conn.fetch(
            f"""UPDATE invoices i SET status = 'paid', attempt_pending = false,
                    payment_ids = i.payment_ids || u.payment_id, amount_paid = i.amount_due,
                    paid_at = u.paid_at, last_decline_code = NULL, next_attempt_at = NULL,
                    updated_at = now(), api_key_id = $5, correlation_id = $6
                FROM unnest($1::uuid[], $2::int[], $3::uuid[], $4::timestamptz[])
                     AS u(id, attempt, payment_id, paid_at)
                WHERE i.id = u.id AND i.attempts = u.attempt AND i.attempt_pending
                RETURNING {_INVOICE_COLUMNS_OF_I}""",
            [p.invoice_id for p in paid],
            [p.attempt for p in paid],
            [p.payment_id for p in paid],
            [p.paid_at for p in paid],
            principal.api_key_id,
            principal.correlation_id,
        )
        return [_invoice(r) for r in rows]

    async def next_attempts(
        self, conn: asyncpg.Connection, *, subscription_ids: Sequence[UUID]
    ) -> dict[UUID, datetime]:
        """The soonest retry of each subscription's open charges (`next_attempt` for many;
        those with none are left out)."""
        rows = await conn.fetch(
            """SELECT subscription_id, min(next_attempt_at) AS at FROM invoices
               WHERE subscription_id = ANY($1::uuid[]) AND status = 'open' AND amount_due > 0
                 AND next_attempt_at IS NOT NULL
               GROUP BY subscription_id""",
            list(subscription_ids),
        )
        return {r["subscription_id"]: r["at"] for r in rows}
