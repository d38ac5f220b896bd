"""SQL of the records' read side: transaction rows and audit rows, one or a filtered page.
Keyword-only methods; reads only. Every filter value is a bound parameter; the sort column
comes from `TRANSACTION_SORTS`, never from input."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from engine.db.listing import NEWEST_FIRST, ListQuery, SortKey, split_page
from engine.payments.commands import RECORDED_GATEWAY
from engine.payments.models import Refund
from engine.payments.repository import refund_of_row
from engine.records.models import AuditEntry, TransactionRecord
from schema.api.records import AuditLogQuery, TransactionQuery, TransactionSort
from schema.states import AuditAction, PaymentStatus, TransactionType

TRANSACTION_SORTS: dict[TransactionSort, SortKey] = {
    TransactionSort.CREATED_AT: SortKey("created_at", descending=False),
    TransactionSort.CREATED_AT_DESC: SortKey("created_at", descending=True),
    TransactionSort.AMOUNT: SortKey("amount", descending=False),
    TransactionSort.AMOUNT_DESC: SortKey("amount", descending=True),
}

_TRANSACTION_COLUMNS = """
    t.id, t.parent_id, t.transaction_type, t.status, t.amount, t.currency, t.amount_capturable,
    t.amount_captured, t.amount_refunded, t.amount_refund_pending, t.customer_id, t.order_id,
    t.payment_method, t.gateway, t.gateway_transaction_id, t.failure_code, t.failure_message,
    t.decline_code, t.description, t.metadata, t.authorization_expires_at, t.created_at,
    t.updated_at
"""
_AUDIT_COLUMNS = """
    a.id, a.entity_type, a.entity_id, a.action, a.old_values, a.new_values, a.api_key_id,
    a.correlation_id, a.created_at
"""


# A row's `method` (`TransactionRecord.method`): what a payment settled outside paygrid, or
# its recorded refund, names as its payment method; `card` for everything a gateway moved.
METHOD_SQL = (
    f"(CASE WHEN t.gateway = '{RECORDED_GATEWAY}' AND t.payment_method IS NOT NULL "
    "THEN t.payment_method ->> 'type' ELSE 'card' END)"
)


def _transaction(row: asyncpg.Record) -> TransactionRecord:
    return TransactionRecord(
        id=row["id"],
        parent_id=row["parent_id"],
        type=TransactionType(row["transaction_type"]),
        status=PaymentStatus(row["status"]),
        amount=row["amount"],
        currency=row["currency"],
        amount_capturable=row["amount_capturable"],
        amount_captured=row["amount_captured"],
        amount_refunded=row["amount_refunded"],
        amount_refund_pending=row["amount_refund_pending"],
        customer_id=row["customer_id"],
        order_id=row["order_id"],
        payment_method=row["payment_method"],
        gateway=row["gateway"],
        gateway_transaction_id=row["gateway_transaction_id"],
        failure_code=row["failure_code"],
        failure_message=row["failure_message"],
        decline_code=row["decline_code"],
        description=row["description"],
        metadata=row["metadata"],
        authorization_expires_at=row["authorization_expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _audit(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        entity_type=row["entity_type"],
        entity_id=row["entity_id"],
        action=AuditAction(row["action"]),
        old_values=row["old_values"],
        new_values=row["new_values"],
        api_key_id=row["api_key_id"],
        correlation_id=row["correlation_id"],
        created_at=row["created_at"],
    )


class RecordsRepository:
    async def transaction(
        self, conn: asyncpg.Connection, *, transaction_id: UUID
    ) -> TransactionRecord | None:
        row = await conn.fetchrow(
            f"SELECT {_TRANSACTION_COLUMNS} FROM transactions t WHERE t.id = $1", transaction_id
        )
        return None if row is None else _transaction(row)

    async def transaction_exists(self, conn: asyncpg.Connection, *, transaction_id: UUID) -> bool:
        return bool(
            await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM transactions WHERE id = $1)", transaction_id
            )
        )

    async def transactions(
        self, conn: asyncpg.Connection, *, query: TransactionQuery
    ) -> tuple[list[TransactionRecord], bool]:
        """One page of transaction rows in `query.sort`'s order, and whether more follow."""
        key = TRANSACTION_SORTS[query.sort]
        sql = ListQuery("transactions", "t")
        sql.where("t.transaction_type = {}::transaction_type", query.type)
        sql.where(f"{METHOD_SQL} = {{}}", query.method)
        sql.where("t.status = {}::transaction_status", query.status)
        sql.where("t.currency = {}", query.currency)
        sql.where("t.customer_id = {}", query.customer_id)
        sql.where("t.created_at >= {}", query.created_gte)
        sql.where("t.created_at < {}", query.created_lt)
        sql.where("t.amount >= {}", query.amount_gte)
        sql.where("t.amount <= {}", query.amount_lte)
        sql.after(key, query.starting_after)
        rows = await conn.fetch(sql.page_sql(_TRANSACTION_COLUMNS, key, query.limit), *sql.args)
        found, more = split_page(rows, query.limit)
        return [_transaction(r) for r in found], more

    async def order_payments(
        self, conn: asyncpg.Connection, *, order_id: UUID
    ) -> list[TransactionRecord]:
        """The payments naming an order, oldest first."""
        rows = await conn.fetch(
            f"""SELECT {_TRANSACTION_COLUMNS} FROM transactions t
                WHERE t.order_id = $1 AND t.parent_id IS NULL ORDER BY t.created_at, t.id""",
            order_id,
        )
        return [_transaction(r) for r in rows]

    async def order_refunds(self, conn: asyncpg.Connection, *, order_id: UUID) -> list[Refund]:
        """The refunds of an order's payments, oldest first."""
        rows = await conn.fetch(
            """SELECT r.id, r.transaction_id, r.amount, r.currency, r.reason, r.status,
                      r.created_at
               FROM refunds r JOIN transactions t ON t.id = r.transaction_id
               WHERE t.order_id = $1 AND t.parent_id IS NULL ORDER BY r.created_at, r.id""",
            order_id,
        )
        return [refund_of_row(r) for r in rows]

    async def audit_entry_exists(self, conn: asyncpg.Connection, *, entry_id: UUID) -> bool:
        return bool(
            await conn.fetchval("SELECT EXISTS (SELECT 1 FROM audit_logs WHERE id = $1)", entry_id)
        )

    async def audit_entries(
        self, conn: asyncpg.Connection, *, query: AuditLogQuery
    ) -> tuple[list[AuditEntry], bool]:
        """One page of audit rows, newest first, and whether more follow."""
        sql = ListQuery("audit_logs", "a")
        sql.where("a.entity_type = {}", query.entity_type)
        sql.where("a.entity_id = {}", query.entity_id)
        sql.where("a.action = {}", query.action)
        sql.where("a.api_key_id = {}", query.api_key_id)
        sql.where("a.correlation_id = {}", query.correlation_id)
        sql.where("a.created_at >= {}", query.created_gte)
        sql.where("a.created_at < {}", query.created_lt)
        sql.after(NEWEST_FIRST, query.starting_after)
        rows = await conn.fetch(sql.page_sql(_AUDIT_COLUMNS, NEWEST_FIRST, query.limit), *sql.args)
        found, more = split_page(rows, query.limit)
        return [_audit(r) for r in found], more
