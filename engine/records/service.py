"""Reading the records: one transaction with its refunds, pages of transactions, pages of the
audit trail. Reads only, each on one pooled connection.

A cursor (`starting_after`) must name an existing row of the list it pages: an unknown one is
a 400 naming it, rather than a silently empty page that reads like the end of the list.
"""

from __future__ import annotations

from uuid import UUID

from engine.db.database import Database
from engine.errors import InvalidRequest, NotFound
from engine.payments.models import Refund
from engine.payments.repository import PaymentRepository
from engine.records.models import AuditEntry, Page, TransactionRecord
from engine.records.repository import RecordsRepository
from schema.api.records import AuditLogQuery, TransactionQuery


def _unknown_cursor(cursor: UUID) -> InvalidRequest:
    return InvalidRequest(f"no row {cursor} to start after", param="starting_after")


class RecordsService:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._records = RecordsRepository()
        self._payments = PaymentRepository()

    async def transaction(self, transaction_id: UUID) -> tuple[TransactionRecord, list[Refund]]:
        """The transaction row with the refunds of its payment (none for an operation row), or
        NotFound."""
        async with self._db.connection() as conn:
            record = await self._records.transaction(conn, transaction_id=transaction_id)
            if record is None:
                raise NotFound(f"no transaction {transaction_id}", param="transaction_id")
            refunds = []
            if record.parent_id is None:
                refunds = await self._payments.refunds_of(conn, payment_id=record.id)
        return record, refunds

    async def transactions(self, query: TransactionQuery) -> Page[TransactionRecord]:
        """A page of transaction rows matching `query`, in its order."""
        async with self._db.connection() as conn:
            cursor = query.starting_after
            if cursor is not None and not await self._records.transaction_exists(
                conn, transaction_id=cursor
            ):
                raise _unknown_cursor(cursor)
            found, more = await self._records.transactions(conn, query=query)
        return Page(found, more)

    async def audit_logs(self, query: AuditLogQuery) -> Page[AuditEntry]:
        """A page of audit rows matching `query`, newest first."""
        async with self._db.connection() as conn:
            cursor = query.starting_after
            if cursor is not None and not await self._records.audit_entry_exists(
                conn, entry_id=cursor
            ):
                raise _unknown_cursor(cursor)
            found, more = await self._records.audit_entries(conn, query=query)
        return Page(found, more)
