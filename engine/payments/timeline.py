"""A payment's timeline: the request, its gateway attempts, refunds, ledger entries, events,
webhook attempts and audit rows, merged in time order, read in one repeatable-read snapshot.

One function over `TimelineRepository`, so the request-timeline service (by correlation id) can
share the per-source reads. `sources` is what the caller may see (the console passes those the
signed-in key's scopes read in the API); nothing else is queried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from uuid import UUID

from engine.db.database import Database
from engine.errors import NotFound
from engine.payments.timeline_models import TimelineEntry, TimelineSource
from engine.payments.timeline_repository import TimelineRepository

_ORDER = {s: i for i, s in enumerate(TimelineSource)}


async def payment_timeline(
    db: Database, payment_id: UUID, *, sources: Collection[TimelineSource]
) -> list[TimelineEntry]:
    """Every entry of `sources` about the payment and its operations, oldest first (ties in
    the order of `TimelineSource`: a request before its gateway call before its ledger
    entries); NotFound for an unknown payment."""
    repository = TimelineRepository()
    entries: list[TimelineEntry] = []
    async with db.connection() as conn, conn.transaction(isolation="repeatable_read"):
        ids, requests = await repository.operations(conn, payment_id=payment_id)
        if not ids:
            raise NotFound(f"no payment {payment_id}", param="payment_id")
        reads: dict[TimelineSource, Callable[[], Awaitable[list[TimelineEntry]]]] = {
            TimelineSource.REFUND: lambda: repository.refunds(conn, payment_id=payment_id),
            TimelineSource.GATEWAY: lambda: repository.gateway_attempts(
                conn, payment_id=payment_id
            ),
            TimelineSource.LEDGER: lambda: repository.ledger_entries(conn, transaction_ids=ids),
            TimelineSource.EVENT: lambda: repository.events(conn, object_ids=ids),
            TimelineSource.WEBHOOK: lambda: repository.webhook_attempts(conn, object_ids=ids),
            TimelineSource.AUDIT: lambda: repository.audit_rows(conn, entity_ids=ids),
        }
        if TimelineSource.REQUEST in sources:
            entries += requests
        for source, read in reads.items():
            if source in sources:
                entries += await read()
    return sorted(entries, key=lambda e: (e.at, _ORDER[e.source]))
