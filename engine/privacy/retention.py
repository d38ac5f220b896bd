"""The financial retention purge (issue 9): an erased customer's pseudonymous rows are kept for
the financial retention period (`financial_retention_years`, default 7), then go.

A customer qualifies when it is erased (crypto-shredded: nothing in its rows can name it any
more) and every row of its history (engine/privacy/retention_repository.py says which) is older
than the period; a customer not erased, or with one recent row, an open AML alert or a
subscription not ended, is never touched. Each customer goes whole in a transaction of its own,
checked again under its row lock, with a `DELETE` audit entry saying how many rows went where
(the tables' audit triggers record each row deleted too, pseudonymous as the rows were). The
ledger loses the customer's entries and the payments they balance together, so every remaining
customer's balances and every constraint still hold.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from engine.audit.repository import AuditRepository
from engine.config import MIN_FINANCIAL_RETENTION_YEARS
from engine.customers.service import ENTITY
from engine.db.database import Database
from engine.principal import Principal
from engine.privacy.retention_repository import RetentionRepository
from schema.states import AuditAction

# Customers listed per read; each is then purged in its own transaction.
BATCH = 100
_WHO = Principal(None, "retention.financial")


def cutoff(years: int, now: datetime | None = None) -> datetime:
    """The instant `years` (at least the minimum) before `now`: rows older than it are past
    retention. Feb 29 falls back to Feb 28."""
    now = now or datetime.now(UTC)
    years = max(MIN_FINANCIAL_RETENTION_YEARS, years)
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


async def purge_expired_customers(db: Database, *, years: int, batch: int = BATCH) -> list[UUID]:
    """Delete every erased customer whose whole history is older than `years`, one customer
    per transaction; the ids purged."""
    before = cutoff(years)
    repository = RetentionRepository()
    audit = AuditRepository()
    purged: list[UUID] = []
    after: UUID | None = None
    while True:
        async with db.connection() as conn:
            listed = await repository.expired(conn, cutoff=before, after=after, limit=batch)
        for customer_id in listed:
            async with db.transaction() as conn:
                if not await repository.lock_expired(conn, customer_id=customer_id, cutoff=before):
                    continue
                deleted = await repository.delete_customer(conn, customer_id=customer_id)
                await audit.record(
                    conn,
                    entity_type=ENTITY,
                    entity_ids=[customer_id],
                    action=AuditAction.DELETE,
                    details={
                        "reason": "financial_retention",
                        "retention_years": max(MIN_FINANCIAL_RETENTION_YEARS, years),
                        "cutoff": before.isoformat(),
                        "rows_deleted": deleted,
                    },
                    principal=_WHO,
                )
            purged.append(customer_id)
        if len(listed) < batch:
            return purged
        after = listed[-1]
